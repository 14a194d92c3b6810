"""A webhook receiver for the tests: a real HTTP server on 127.0.0.1 that verifies signatures.

The verification is the Standard Webhooks specification's own algorithm, written out here from
the specification (not the project's signer): the signed content is `{id}.{timestamp}.{body}`,
the key is the base64 part of `whsec_...` decoded, the signature HMAC-SHA256 in base64 after
`v1,`, several space-separated signatures allowed, compared in constant time, and a timestamp
more than 5 minutes from now refused.
"""

import base64
import hashlib
import hmac
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE_SECONDS = 5 * 60


class WebhookVerificationError(Exception):
    pass


def standard_webhooks_verify(secret: str, headers: dict[str, str], payload: bytes) -> dict:
    """The specification's verify(): raise unless one of the signatures is the expected one."""
    msg_id = headers.get("webhook-id")
    msg_timestamp = headers.get("webhook-timestamp")
    msg_signature = headers.get("webhook-signature")
    if not (msg_id and msg_timestamp and msg_signature):
        raise WebhookVerificationError("Missing required headers")
    try:
        timestamp = int(msg_timestamp)
    except ValueError:
        raise WebhookVerificationError("Invalid Signature Headers") from None
    now = int(time.time())
    if timestamp < now - TOLERANCE_SECONDS:
        raise WebhookVerificationError("Message timestamp too old")
    if timestamp > now + TOLERANCE_SECONDS:
        raise WebhookVerificationError("Message timestamp too new")
    prefix = "whsec_"
    key = base64.b64decode(secret[len(prefix) :] if secret.startswith(prefix) else secret)
    to_sign = f"{msg_id}.{msg_timestamp}.".encode() + payload
    expected = base64.b64encode(hmac.new(key, to_sign, hashlib.sha256).digest()).decode()
    for versioned_signature in msg_signature.split(" "):
        version, _, signature = versioned_signature.partition(",")
        if version != "v1":
            continue
        if hmac.compare_digest(expected, signature):
            return json.loads(payload)
    raise WebhookVerificationError("No matching signature found")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    answered: int | str
    peer: tuple[str, int] = ("", 0)  # the worker's end of the connection it came on

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each path with its planned statuses in turn (then 200); "hang" answers nothing
    for `hang_seconds`; a 3xx carries a Location to /elsewhere."""

    server: ThreadingHTTPServer
    plans: dict[str, list[int | str]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    hang_seconds: float = 5.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def plan(self, path: str, *answers: int | str) -> None:
        self.plans[path] = list(answers)

    def next_answer(self, path: str) -> int | str:
        with self.lock:
            planned = self.plans.get(path)
            return planned.pop(0) if planned else 200

    def wait_for(self, count: int, path: str | None = None, timeout: float = 30) -> list[Received]:
        def matching() -> list[Received]:
            return [r for r in self.received if path is None or r.path == path]

        with self.arrived:
            self.arrived.wait_for(lambda: len(matching()) >= count, timeout)
        return matching()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_receiver(tls: ssl.SSLContext | None = None) -> Receiver:
    """A receiver on 127.0.0.1; with `tls`, an https one (the context holds its certificate)."""
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            answer = receiver.next_answer(self.path)
            headers = {key.lower(): value for key, value in self.headers.items()}
            peer = self.client_address
            with receiver.arrived:
                received = Received(self.path, headers, body, time.time(), answer, peer)
                receiver.received.append(received)
                receiver.arrived.notify_all()
            if answer == "hang":
                time.sleep(receiver.hang_seconds)
                answer = 200
            status = int(answer)
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:  # the handshake in each request's thread, not the accepting one's
        server.socket = tls.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
    receiver = Receiver(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver


def start_worker(env: dict[str, str], queue: str, pool: str = "prefork") -> subprocess.Popen:
    """A real `celery worker` on `queue` (prefork, two children; or `pool`, such as production's
    threads), its output kept in a pipe."""
    command = [sys.executable, "-m", "celery", "-A", "scheduled.celery", "worker"]
    command += ["--queues", queue, "--pool", pool, "--concurrency", "2", "--loglevel", "info"]
    command += ["--without-heartbeat", "--without-gossip", "--without-mingle"]
    command += ["--hostname", f"{queue}-{uuid.uuid4().hex[:6]}@%h"]  # a pidbox of its own
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
