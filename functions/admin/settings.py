"""Settings of the admin function: the shared settings plus what Django's admin needs.

Only the admin function loads them (its handler makes them the default; compose and a Lambda
name them), so the API functions start without the admin, sessions, messages or CSRF. A process
that serves every function at once (the local run, the test suite, `manage.py`) loads these:
they are the shared settings and more, never different.

Staff sign in with Django's session auth. Sessions live in the database: signing out ends a
session on the server, so a copied cookie dies with it (a signed cookie stays good until it
expires), and the admin needs its migrations anyway for its change history. Expired sessions
are cleared with `manage.py clearsessions`.
"""

from common.infra.settings import *  # noqa: F403
from common.infra.settings import INSTALLED_APPS, MIDDLEWARE, _env_bool

ADMIN_APPS = [
    "django.contrib.admin.apps.SimpleAdminConfig",  # functions.admin.site registers its models
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",  # the admin's CSS and scripts, served by the admin function
]
INSTALLED_APPS = [*INSTALLED_APPS, *(app for app in ADMIN_APPS if app not in INSTALLED_APPS)]

ADMIN_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
MIDDLEWARE = [*MIDDLEWARE, *ADMIN_MIDDLEWARE]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# The admin's cookies go to /admin/ alone: the API never receives them.
SESSION_COOKIE_PATH = CSRF_COOKIE_PATH = "/admin/"
SESSION_COOKIE_AGE = 8 * 60 * 60  # a working day; signing in again after it is cheap
# Secure cookies for deployments behind TLS only (compose serves plain http on localhost).
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _env_bool("SECURE_COOKIES")
