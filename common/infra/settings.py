"""Settings for every Taskwire process, read from the environment (README: Configuration).

One module for all roles: each function, the realtime service, the workers and the local run.
A function chooses its own URLs at the ASGI layer (common.infra.asgi), not with settings of its own.

Two modes, chosen by DEBUG alone. Local mode (DEBUG=true: `make run`, `manage.py` in a checkout)
keeps its state and its signing key under var/, made once per checkout. Production (DEBUG unset
or false, as the Docker image sets it) has no secret defaults: a missing or short SECRET_KEY, or
a missing REDIS_URL, stops start-up.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parents[2]


def _env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _local_secret_key(path: Path) -> str:
    """This checkout's own signing key: made at first use, kept beside the demo password."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made by an earlier run, or by a process starting beside this one
        pass
    else:
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(64))
    return path.read_text().strip()


DEBUG = _env_bool("DEBUG")
# Local mode is the developer's laptop: the embedded run (`make run`) and `manage.py` there.
LOCAL_MODE = DEBUG

# Local state of the embedded run (the SQLite file, the demo password, the signing key, Beat's
# schedule).
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var")).resolve()

SECRET_KEY_MIN_LENGTH = 50  # what Django's own deployment check asks of a key
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not LOCAL_MODE:
        raise ImproperlyConfigured("SECRET_KEY must be set (only DEBUG=true makes its own).")
    SECRET_KEY = _local_secret_key(VAR_DIR / "secret-key")
elif not LOCAL_MODE and len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH:
    raise ImproperlyConfigured(
        f"SECRET_KEY must be at least {SECRET_KEY_MIN_LENGTH} characters long "
        "(for example: python -c 'import secrets; print(secrets.token_urlsafe(64))')."
    )

ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if LOCAL_MODE else "")

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",  # refresh tokens: rotated, revocable
    "django_filters",
    "common.domain",
    "scheduled",
]
# The interactive docs (/docs/, /schema/) exist in local runs only.
DOCS_APPS = ["django.contrib.staticfiles", "drf_spectacular", "drf_spectacular_sidecar"]
if LOCAL_MODE:
    INSTALLED_APPS += DOCS_APPS
STATIC_URL = "/static/"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "common.api.middleware.JSONErrorMiddleware",
    "common.api.middleware.DatabaseBusyMiddleware",
]

# Security headers on every answer, in every mode (the cached hit path adds the same ones).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# HSTS for deployments behind TLS only: browsers keep it, so it is off until asked for.
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = _env_bool("SECURE_HSTS_PRELOAD")

# Each function serves its own urlconf (common.infra.asgi); this one is only health and readiness.
ROOT_URLCONF = "common.api.urls"
APPEND_SLASH = False

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'taskwire.sqlite3'}")
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django under ASGI serves each request on a thread of its own, so a connection kept per
    # thread (CONN_MAX_AGE) would leak one per request: a process-wide pool reuses them instead.
    # Bounded waits: a request that cannot get a connection, a lock or its answer in time gets
    # 503 with Retry-After (common.api.middleware) instead of holding a connection that others need.
    DATABASES["default"]["OPTIONS"] = {
        "pool": {
            "min_size": 1,
            "max_size": int(os.environ.get("DB_POOL_MAX", "8")),
            "timeout": float(os.environ.get("DB_POOL_TIMEOUT", "3")),
        },
        "options": (
            f"-c lock_timeout={int(os.environ.get('DB_LOCK_TIMEOUT_MS', '2000'))}"
            f" -c statement_timeout={int(os.environ.get('DB_STATEMENT_TIMEOUT_MS', '30000'))}"
        ),
    }
else:
    # WAL, a busy timeout and immediate transactions: concurrent writers wait instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
LANGUAGE_CODE = "en-us"
USE_I18N = False

# Bodies over 1 MiB are refused with 413 before Django reads them (common.infra.asgi.BodyLimit).
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# Redis: the pub/sub channels that carry events to /ws/notifications/, and the list cache.
# Local mode without REDIS_URL keeps everything in the one process. CACHE_REDIS_URL and
# CHANNEL_REDIS_URL put each on a Redis (or database) of its own; both default to REDIS_URL.
REDIS_URL = os.environ.get("REDIS_URL", "")
REDIS_PREFIX = os.environ.get("REDIS_PREFIX", "taskwire")
CACHE_REDIS_URL = os.environ.get("CACHE_REDIS_URL", REDIS_URL)
# Events: one PUBLISH per event, on channels named by infra.event_push, fanned out inside each
# realtime process (realtime.fanout); the realtime socket quota lives there too. Delivery is best
# effort; the event log (common.domain.events) is what makes it complete and ordered.
CHANNEL_REDIS_URL = os.environ.get("CHANNEL_REDIS_URL", REDIS_URL)
if not (CACHE_REDIS_URL and CHANNEL_REDIS_URL) and not LOCAL_MODE:
    raise ImproperlyConfigured("REDIS_URL must be set (only DEBUG=true runs without Redis).")
CACHES: dict[str, dict[str, Any]]
if CACHE_REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_REDIS_URL,
            "KEY_PREFIX": os.environ.get("REDIS_PREFIX", "taskwire"),
            # Its timeouts are common.infra.redis_clients' (0.5 s), for every user of this Redis.
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# A list page larger than this is served but not cached: one page may not take a large share
# of Redis (common.infra.cache.pages).
CACHE_PAGE_MAX_BYTES = int(os.environ.get("CACHE_PAGE_MAX_BYTES", str(1024 * 1024)))

# The realtime service: how often it pings each client.
REALTIME_PING_SECONDS = float(os.environ.get("REALTIME_PING_SECONDS", "30"))

# The event log (common.domain.events): how long events are kept (`prune_events`), and so how far
# back /ws/notifications/ resumes and /projects/{id}/events/ reads.
EVENT_RETENTION_DAYS = int(os.environ.get("EVENT_RETENTION_DAYS", "7"))

# Webhooks (common.domain.webhooks, scheduled.webhooks). Outside local mode a webhook's host must
# resolve to public addresses only; a local run's receivers are on this machine.
WEBHOOK_ALLOW_PRIVATE_NETWORKS = _env_bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", LOCAL_MODE)
# Seconds before each retry of a failed attempt (each with jitter); then the delivery has failed.
WEBHOOK_RETRY_SCHEDULE = [
    float(delay)
    for delay in _env_list("WEBHOOK_RETRY_SCHEDULE", "5,300,1800,7200,18000,36000,36000")
]
WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "10"))

DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Taskwire <noreply@taskwire.local>")

# Email goes out through Amazon SES (django-ses); SES_ENDPOINT_URL points it at moto locally.
# The local run (local.run) mocks SES in-process with moto and says so with EMAIL_BACKEND;
# a bare local process (a shell, a one-off command) prints mail instead of reaching AWS.
SES_ENDPOINT_URL = os.environ.get("SES_ENDPOINT_URL", "")
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "")
if not EMAIL_BACKEND:
    if SES_ENDPOINT_URL or not LOCAL_MODE:
        EMAIL_BACKEND = "scheduled.email.SESBackend"
    else:
        EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
AWS_SES_REGION_NAME = os.environ.get("AWS_REGION", "us-east-1")
AWS_SES_REGION_ENDPOINT = f"email.{AWS_SES_REGION_NAME}.amazonaws.com"
if SES_ENDPOINT_URL:
    AWS_SES_REGION_ENDPOINT_URL = SES_ENDPOINT_URL
# django-ses's own pacing counts one process's sends only: scheduled.send_rate paces the fleet.
AWS_SES_AUTO_THROTTLE = None
# Sends per second of the whole fleet (scheduled.send_rate); 0: SES's MaxSendRate for the account.
SES_MAX_SEND_RATE = float(os.environ.get("SES_MAX_SEND_RATE", "0"))
# Explicit timeouts, so an SES that never answers cannot hold a job; scheduled.email.SESBackend
# gives them to botocore with its retries off (botocore's resend after a read timeout is a
# second email). Kept as numbers here: importing botocore would cost every function's start.
SES_CONNECT_TIMEOUT = float(os.environ.get("SES_CONNECT_TIMEOUT", "5"))
SES_READ_TIMEOUT = float(os.environ.get("SES_READ_TIMEOUT", "15"))

# Celery: the jobs (scheduled/). JSON only, acknowledged after the job ran (jobs are
# idempotent), one message at a time per worker, bounded run time, no result backend.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "memory://localhost/" if LOCAL_MODE else "")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Never give up on the broker: a Beat that gave up during an outage would lose the runs due then
# (scheduled.beat keeps a run due until it could be sent).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# The queue Beat sends to and workers take from: deployments sharing a broker keep apart.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "celery")
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_TIME_LIMIT = 300
CELERY_TIMEZONE = TIME_ZONE

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "common.api.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["common.api.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "common.api.pagination.PageNumberPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "common.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "common.api.errors.exception_handler",
    # Not DRF's own throttles: an atomic count in Redis (common.infra.limits), writes only.
    "DEFAULT_THROTTLE_CLASSES": ["common.api.limits.WriteRateLimit"],
    "PAGE_SIZE": 50,
}

# Limits (common.infra.limits, counted in the list cache's Redis): writes per user in any 60 s,
# and how many proxies in front of the functions append to X-Forwarded-For (0: none, the
# connection's own address is the client's), which says where the client address of the login
# limits is read from.
API_WRITE_RATE = int(os.environ.get("API_WRITE_RATE", "120"))
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=int(os.environ.get("JWT_ACCESS_MINUTES", "15"))),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=1),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "UPDATE_LAST_LOGIN": False,
    # Rotation: a refresh answers a new refresh token and revokes the one it was given.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    # Every token carries a digest of its user's password hash, checked wherever a token is
    # (REST, the cache's hit path, the websocket): a password change, however made, ends them all.
    "CHECK_REVOKE_TOKEN": True,
    "TOKEN_OBTAIN_SERIALIZER": "common.api.tokens.TokenObtainPairSerializer",
    "TOKEN_REFRESH_SERIALIZER": "common.api.tokens.TokenRefreshSerializer",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Taskwire API",
    "DESCRIPTION": "Projects, tasks and comments, with realtime events and scheduled jobs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    # uvicorn logs each request line, websocket handshakes on uvicorn.error: their /ws/ query
    # strings may carry an access token (common.infra.access_logs).
    "filters": {"redact_websocket_query": {"()": "common.infra.access_logs.RedactWebsocketQuery"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        # httpx logs each request's URL: a webhook's URL may carry its receiver's token.
        "httpx": {"level": "WARNING"},
        "uvicorn.error": {"filters": ["redact_websocket_query"]},
        # Configured here, it loses uvicorn's own handler: it gets ours, and stays out of root's.
        "uvicorn.access": {
            "handlers": ["console"],
            "filters": ["redact_websocket_query"],
            "propagate": False,
        },
    },
}

if not LOCAL_MODE:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
