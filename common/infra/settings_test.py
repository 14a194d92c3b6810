"""Settings for the test suite: the shared settings, on the PostgreSQL of this machine.

The suite serves every function in one process, the admin among them: it runs on the admin's
settings (functions.admin.settings), which are the shared ones plus what the admin needs.

Every value stays overridable from the environment; only what the suite cannot run without
get a default here.
"""

import os

os.environ.setdefault(
    "SECRET_KEY", "test-only-signing-key-not-a-secret-anywhere-long-enough-for-production"
)
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
# SES is moto's (mock_aws) in tests: fake credentials, so nothing can reach AWS.
for name in (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SECURITY_TOKEN",
    "AWS_SESSION_TOKEN",
):
    os.environ[name] = "testing"
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("REDIS_PREFIX", f"taskwire-test-{os.getpid()}")
# moto's SES reports a sandbox's 1/s: the suite paces at a rate that holds nothing up.
os.environ.setdefault("SES_MAX_SEND_RATE", "1000")

from functions.admin.settings import *  # noqa: E402, F403
from functions.admin.settings import DOCS_APPS, INSTALLED_APPS  # noqa: E402

INSTALLED_APPS = INSTALLED_APPS + [app for app in DOCS_APPS if app not in INSTALLED_APPS]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
