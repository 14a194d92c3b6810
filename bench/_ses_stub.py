"""A local SES that keeps to a send rate: SES's query API (moto's shape), rate R, latency L.

`python -m bench._ses_stub --port P --rate R --latency-ms L` (or SESStub in a thread). It
answers SendRawEmail (and SendEmail) after L ms, and beyond R per second answers at once with
SES's own `Throttling` error (400, "Maximum sending rate exceeded."), as SES does: a token
bucket of R per second holding BURST_SECONDS of sends (the slack a real network's jitter needs).
GetSendQuota reports MaxSendRate = R; VerifyEmailIdentity is accepted. A message counts as
accepted when its token is taken, before the latency: a client killed while waiting for the
answer has had its email sent, as with SES.

`GET /stats`: {"accepted", "throttled", "other", "quota_reads", "by_key": {"task:ID": count,
...}, "first", "last"} (the key from the message's first "Task #ID" or "Project #ID"; first and last
acceptance, seconds of time.monotonic() in the stub); `POST /reset` empties them.
"""

import argparse
import base64
import json
import re
import sys
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

BURST_SECONDS = 0.25
_NS = "http://ses.amazonaws.com/doc/2010-12-01/"
_KEY = re.compile(rb"(Task|Project) #(\d+)")


class _Bucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.capacity = rate, max(1.0, rate * burst)
        self.tokens, self.at = self.capacity, time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


class _State:
    def __init__(self, rate: float, latency_s: float, burst: float) -> None:
        self.rate, self.latency_s = rate, latency_s
        self.bucket = _Bucket(rate, burst)
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.accepted = self.throttled = self.other = self.quota_reads = 0
            self.by_key: Counter[str] = Counter()
            self.first: float | None = None
            self.last: float | None = None

    def accept(self, raw: bytes) -> None:
        match = _KEY.search(raw)
        key = f"{match[1].decode().lower()}:{int(match[2])}" if match else "unknown"
        now = time.monotonic()
        with self.lock:
            self.accepted += 1
            self.by_key[key] += 1
            self.first = now if self.first is None else self.first
            self.last = now

    def stats(self) -> dict:
        with self.lock:
            return {
                "accepted": self.accepted,
                "throttled": self.throttled,
                "other": self.other,
                "quota_reads": self.quota_reads,
                "by_key": dict(self.by_key),
                "first": self.first,
                "last": self.last,
            }


def _handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pool expects
        # An answer's headers and body leave in one write (buffered, flushed after each
        # request), with no Nagle delay: unbuffered, the body waited for the client's delayed
        # ACK of the headers, about 40 ms more than L per send.
        wbufsize = -1
        disable_nagle_algorithm = True

        def log_message(self, format, *args) -> None:
            pass

        def _answer(self, status: int, body: bytes, kind: str = "text/xml") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._answer(200, b'{"status": "ok"}', "application/json")
            elif self.path == "/stats":
                self._answer(200, json.dumps(state.stats()).encode(), "application/json")
            else:
                self._answer(404, b"")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/reset":
                state.reset()
                self._answer(200, b"{}", "application/json")
                return
            form = {name: values[0] for name, values in parse_qs(body.decode()).items()}
            action = form.get("Action", "")
            if action in ("SendRawEmail", "SendEmail"):
                self._send(action, form)
            elif action == "GetSendQuota":
                with state.lock:
                    state.quota_reads += 1
                result = (
                    "<SentLast24Hours>0</SentLast24Hours><Max24HourSend>1000000</Max24HourSend>"
                    f"<MaxSendRate>{state.rate:g}</MaxSendRate>"
                )
                self._answer(200, _response(action, result))
            elif action == "VerifyEmailIdentity":
                self._answer(200, _response(action, ""))
            else:
                with state.lock:
                    state.other += 1
                self._answer(400, _error("InvalidAction", f"unknown action {action!r}"))

        def _send(self, action: str, form: dict[str, str]) -> None:
            if not state.bucket.take():
                with state.lock:
                    state.throttled += 1
                self._answer(400, _error("Throttling", "Maximum sending rate exceeded."))
                return
            if action == "SendRawEmail":  # the key is searched in the message as sent (cheap)
                raw = base64.b64decode(form.get("RawMessage.Data", ""))
            else:
                raw = form.get("Message.Body.Text.Data", "").encode()
            state.accept(raw)
            time.sleep(state.latency_s)
            result = f"<MessageId>{uuid.uuid4()}</MessageId>"
            self._answer(200, _response(action, result))

    return Handler


def _response(action: str, result: str) -> bytes:
    return (
        f'<{action}Response xmlns="{_NS}"><{action}Result>{result}</{action}Result>'
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        f"</{action}Response>"
    ).encode()


def _error(code: str, message: str) -> bytes:
    return (
        f'<ErrorResponse xmlns="{_NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{message}</Message></Error><RequestId>{uuid.uuid4()}</RequestId>"
        "</ErrorResponse>"
    ).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A client gone mid-answer (a worker the kill run SIGKILLed while its send waited L):
        # its email counted as accepted, as SES's would; no traceback in the stub's log.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class SESStub:
    """The stub in a thread of this process: start(), url, stats(), stop()."""

    def __init__(
        self, rate: float, latency_ms: float, port: int = 0, burst: float = BURST_SECONDS
    ) -> None:
        self.state = _State(rate, latency_ms / 1000, burst)
        self.server = _Server(("127.0.0.1", port), _handler(self.state))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "SESStub":
        self.thread.start()
        return self

    def stats(self) -> dict:
        return self.state.stats()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--latency-ms", type=float, default=40)
    parser.add_argument("--burst", type=float, default=BURST_SECONDS)
    args = parser.parse_args()
    stub = SESStub(args.rate, args.latency_ms, args.port, args.burst)
    print(f"SES stub on {stub.url}: {args.rate:g}/s, {args.latency_ms:g} ms", flush=True)
    stub.server.serve_forever()


if __name__ == "__main__":
    main()
