"""The one-command local run (`make run`): the whole system in one process, on one port.

Embedded, with nothing else installed: DEBUG (local mode), a SQLite file under var/, an
in-process cache and channel layer, the Celery worker and Beat as threads on the in-memory
transport, SES mocked in-process by moto. Each of DATABASE_URL, REDIS_URL, CELERY_BROKER_URL and
SES_ENDPOINT_URL swaps in the real service; with a broker the worker and Beat are child
processes, as in compose.
"""

import os
import secrets
import signal

from local import ses
from local.workers import EmbeddedWorkers, WorkerProcesses

DEMO_USERNAME = "demo"


def _demo_password() -> str:
    """The demo user's password: made once per checkout, kept in var/ (VAR_DIR; never committed)."""
    from django.conf import settings

    path = settings.VAR_DIR / "demo-password"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(12))
        path.chmod(0o600)
    return path.read_text().strip()


def _prepare() -> str:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    password = _demo_password()
    user, created = get_user_model().objects.get_or_create(
        username=DEMO_USERNAME, defaults={"email": "demo@taskwire.local"}
    )
    if created or not user.check_password(password):
        user.set_password(password)
        user.save(update_fields=["password"])
    return password


def build_gateway():
    """The gateway app with every function mounted, as the local run serves it."""
    from django.apps import apps as installed
    from django.conf import settings

    from common.infra.asgi import function_application
    from common.infra.static import StaticFiles
    from functions.auth.handler import application as auth
    from functions.comments.handler import application as comments
    from functions.projects.handler import application as projects
    from functions.tasks.handler import application as tasks
    from local.gateway import Gateway
    from realtime.handler import application as realtime
    from realtime.lifespan import lifespan

    apps = {"projects": projects, "tasks": tasks, "comments": comments, "auth": auth}
    apps["realtime"] = realtime
    if installed.is_installed("django.contrib.admin"):  # on the admin's settings, as main() runs
        from functions.admin.handler import application as admin

        apps["admin"] = admin
    if settings.LOCAL_MODE:  # the docs, the outbox and the jobs endpoint: local mode only
        apps["local"] = StaticFiles(function_application("local.urls"))
    return Gateway(apps, lifespan=lifespan)  # the realtime service's, as it runs in compose


# With a broker the worker and Beat are processes of their own: what they share with this one
# (events, cache versions, sent mail) must then live in services too.
SHARED_BY_WORKERS = ("REDIS_URL", "SES_ENDPOINT_URL")


def _mode() -> str:
    """What the environment asks for: everything in this process, or the services it names."""
    if not os.environ.get("CELERY_BROKER_URL"):
        return "embedded"
    missing = [name for name in SHARED_BY_WORKERS if not os.environ.get(name)]
    if missing:
        raise SystemExit(
            "CELERY_BROKER_URL is set, so the worker and Beat run as processes of their own: "
            f"set {' and '.join(missing)} too, or unset CELERY_BROKER_URL to run everything in "
            "one process."
        )
    return "services"


def main() -> None:
    import django
    import uvicorn

    os.environ.setdefault("DEBUG", "true")
    # Every function in one process, the admin among them: the admin's settings are the shared
    # ones plus what the admin needs (the API functions answer the same under either).
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "functions.admin.settings")
    mode = _mode()
    for name, value in ses.FAKE_CREDENTIALS.items():  # moto, in-process or a server, takes these
        os.environ.setdefault(name, value)
    if not os.environ.get("SES_ENDPOINT_URL"):
        os.environ.setdefault("EMAIL_BACKEND", "scheduled.email.SESBackend")
        ses.start_in_process()
    django.setup()
    from django.conf import settings

    settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
    password = _prepare()
    sender = ses.verify_sender()
    workers_class = EmbeddedWorkers if mode == "embedded" else WorkerProcesses
    workers = workers_class(schedule_file=settings.VAR_DIR / "celerybeat-schedule")
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again once it has put
    # back the handler it found: by default that ends the process on the spot, skipping the
    # `finally` below and leaving a services-mode worker and Beat running as orphans.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    workers.start()

    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    base = f"http://{host}:{port}"
    print(
        f"\nTaskwire is running at {base}/ ({_describe(mode)})\n"
        f"  the page:  {base}/ (sign in, a project's tasks, its events live)\n"
        f"  API docs:  {base}/docs/\n"
        f"  websocket: ws://{host}:{port}/ws/notifications/?token=<access token>\n"
        f"  demo user: {DEMO_USERNAME} / {password}\n"
        f"  get a token: curl -s -X POST {base}/auth/token/ -H 'Content-Type: application/json' "
        f"""-d '{{"username": "{DEMO_USERNAME}", "password": "{password}"}}'\n"""
        f"  sent email (from {sender}): {base}/local/outbox/\n"
        f"  run a job now: curl -s -X POST {base}/local/jobs/send_due_reminders/\n",
        flush=True,
    )
    try:
        uvicorn.run(
            build_gateway(),
            host=host,
            port=port,
            log_level="info",
            log_config=None,  # the project's LOGGING, applied by django.setup(), redacts tokens
            ws_per_message_deflate=False,
            ws_max_size=64 * 1024,  # a bigger frame closes the socket with 1009
        )
    finally:
        workers.stop()


def _exit_on_signal(signum: int, frame) -> None:
    raise SystemExit(128 + signum)


def _describe(mode: str) -> str:
    from django.conf import settings

    database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    cache = "Redis" if settings.REDIS_URL else "in-process"
    if mode == "embedded":
        jobs = "worker and Beat in-process"
    else:
        jobs = "worker and Beat as child processes on the broker"
    ses_where = "a moto server" if settings.SES_ENDPOINT_URL else "moto in-process"
    return f"{database}, cache and events {cache}, {jobs}, SES {ses_where}"


if __name__ == "__main__":
    main()
