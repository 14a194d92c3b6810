"""The Celery worker and Beat of a local run.

Embedded (no CELERY_BROKER_URL): both run as threads of the local run's own process, on Celery's
in-memory transport; this is Celery's own embedding (a WorkController, Beat's EmbeddedService).
With a broker: they are the same two commands compose runs, as child processes.
"""

import subprocess
import sys
import threading
from pathlib import Path

from scheduled.readiness import broker_readiness_register

# Sends are I/O (SES answers in tens of ms): threads keep several in flight per process.
WORKER_COMMAND = ["celery", "-A", "scheduled.celery", "worker", "--pool", "threads"]
WORKER_COMMAND += ["--concurrency", "4", "--loglevel", "INFO"]
BEAT_COMMAND = ["celery", "-A", "scheduled.celery", "beat", "--loglevel", "INFO"]


class EmbeddedWorkers:
    """A worker (one job at a time) and Beat, as threads of this process."""

    def __init__(self, schedule_file: Path) -> None:
        from celery.beat import EmbeddedService

        from scheduled.celery import app

        self.worker = app.WorkController(
            pool_cls="solo",
            concurrency=1,
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
        )
        self.beat = EmbeddedService(
            app,
            thread=True,
            schedule_filename=str(schedule_file),
            scheduler_cls=app.conf.beat_scheduler,  # the `celery beat` command's
        )
        broker_readiness_register()

    def start(self) -> None:
        threading.Thread(target=self.worker.start, name="celery-worker", daemon=True).start()
        self.beat.start()

    def stop(self) -> None:
        self.beat.stop()
        self.worker.stop()


class WorkerProcesses:
    """`celery worker` and `celery beat` as child processes, with this process's environment."""

    def __init__(self, schedule_file: Path) -> None:
        self.commands = [WORKER_COMMAND, [*BEAT_COMMAND, "--schedule", str(schedule_file)]]
        self.processes: list[subprocess.Popen] = []
        broker_readiness_register()  # this process's /readyz speaks for its workers

    def start(self) -> None:
        for command in self.commands:
            # python -m celery: the celery of this interpreter, whatever is on PATH
            self.processes.append(subprocess.Popen([sys.executable, "-m", *command]))  # noqa: S603 (this interpreter, fixed arguments)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
