"""Real Celery workers for the tests: child processes on RabbitMQ, a queue of the test's own."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

from scheduled.celery import app

ROOT = Path(__file__).resolve().parents[2]


class Workers:
    """start() workers on one queue; send() a job to it; output(worker) once stopped."""

    def __init__(self, **env: str) -> None:
        self.queue = f"test-{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "common.infra.settings",
            "DEBUG": "false",
            "SECRET_KEY": settings.SECRET_KEY,
            "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(
                **connection.settings_dict
            ),
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_QUEUE": self.queue,  # the chunk jobs a run sends go to this queue too
            **env,
        }
        self.processes: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def start(self, *options: str) -> subprocess.Popen:
        log = ROOT / "var" / f"{self.queue}-{len(self.processes)}.log"
        log.parent.mkdir(exist_ok=True)
        command = [sys.executable, "-m", "celery", "-A", "scheduled.celery", "worker"]
        command += ["--queues", self.queue, "--loglevel", "info", "--without-heartbeat"]
        command += ["--without-gossip", "--without-mingle", *options]
        command += ["--hostname", f"{self.queue}-{len(self.processes)}@%h"]  # a pidbox each
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self.processes.append(process)
        self.logs.append(log)
        return process

    def wait_ready(self, timeout: float = 60) -> None:
        """Until every worker started has said it is ready (consuming from the queue)."""
        deadline = time.monotonic() + timeout
        while not all(" ready." in self.output(i) for i in range(len(self.processes))):
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                raise RuntimeError("a worker did not start:\n" + self.output(-1)[-3000:])
            time.sleep(0.2)

    def send(self, job: str, **kwargs) -> None:
        app.send_task("scheduled.run_job", args=[job], kwargs=kwargs, queue=self.queue)

    def output(self, index: int) -> str:
        return self.logs[index].read_text(errors="replace")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        with app.connection_for_write() as broker:  # the test's queue goes with it
            broker.default_channel.queue_delete(self.queue)


@contextmanager
def workers(**env: str) -> Iterator[Workers]:
    started = Workers(**env)
    try:
        yield started
    finally:
        started.stop()
        for log in started.logs:
            log.unlink(missing_ok=True)
