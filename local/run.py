"""The one-command local run (`make run`): every function and the realtime service, one port.

DEBUG (local mode), a SQLite file under var/ and an in-process channel layer, unless the
environment says otherwise (DATABASE_URL, REDIS_URL).
"""

import os
import secrets
from pathlib import Path

VAR = Path(__file__).resolve().parent.parent / "var"
DEMO_USERNAME = "demo"


def _demo_password() -> str:
    """The demo user's password: made once per checkout, kept in var/ (never committed)."""
    path = VAR / "demo-password"
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
    from django.conf import settings
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    from common.asgi import function_application
    from functions.auth.handler import application as auth
    from functions.comments.handler import application as comments
    from functions.projects.handler import application as projects
    from functions.tasks.handler import application as tasks
    from local.gateway import Gateway
    from realtime.handler import application as realtime

    apps = {"projects": projects, "tasks": tasks, "comments": comments, "auth": auth}
    apps["realtime"] = realtime
    if settings.LOCAL_MODE:  # the docs exist in local mode only
        apps["docs"] = ASGIStaticFilesHandler(function_application("local.urls"))
    return Gateway(apps)


def main() -> None:
    import django
    import uvicorn

    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "common.settings")
    VAR.mkdir(exist_ok=True)
    django.setup()
    password = _prepare()
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    base = f"http://{host}:{port}"
    print(
        f"\nTaskwire is running at {base}/\n"
        f"  API docs:  {base}/docs/\n"
        f"  websocket: ws://{host}:{port}/ws/notifications/?token=<access token>\n"
        f"  demo user: {DEMO_USERNAME} / {password}\n"
        f"  get a token: curl -s -X POST {base}/auth/token/ -H 'Content-Type: application/json' "
        f"""-d '{{"username": "{DEMO_USERNAME}", "password": "{password}"}}'\n""",
        flush=True,
    )
    uvicorn.run(
        build_gateway(), host=host, port=port, log_level="info", ws_per_message_deflate=False
    )


if __name__ == "__main__":
    main()
