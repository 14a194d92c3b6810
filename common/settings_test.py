"""Settings for the test suite: the shared settings, on the PostgreSQL of this machine.

Every value stays overridable from the environment; only what the suite cannot run without
get a default here.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-signing-key-not-a-secret-anywhere")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("REDIS_PREFIX", f"taskwire-test-{os.getpid()}")

from common.settings import *  # noqa: F403
from common.settings import DOCS_APPS, INSTALLED_APPS

INSTALLED_APPS = INSTALLED_APPS + [app for app in DOCS_APPS if app not in INSTALLED_APPS]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
