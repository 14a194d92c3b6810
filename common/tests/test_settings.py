"""Settings refuse to run in production without their secrets."""

import os
import subprocess
import sys

SETTINGS = (
    "import django; from django.conf import settings; django.setup(); print(settings.SECRET_KEY)"
)


def run_settings(**env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    return subprocess.run(
        [sys.executable, "-c", SETTINGS],
        env={**base, "DJANGO_SETTINGS_MODULE": "common.settings", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = run_settings()

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_local_mode_has_a_key_and_production_uses_the_given_one():
    assert run_settings(DEBUG="true").stdout.strip().startswith("insecure-local-only")
    assert run_settings(SECRET_KEY="from-the-environment").stdout.strip() == "from-the-environment"
