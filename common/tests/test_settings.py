"""Settings refuse to run in production without their secrets; local mode makes its own."""

import os
import stat
import subprocess
import sys

SETTINGS = "import django; from django.conf import settings; django.setup(); print({})"
LONG_KEY = "k" * 50


def run_settings(*, show: str = "settings.SECRET_KEY", **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "VAR_DIR")}
    return subprocess.run(
        [sys.executable, "-c", SETTINGS.format(show)],
        env={**base, "DJANGO_SETTINGS_MODULE": "common.infra.settings", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = run_settings()

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_a_secret_key_shorter_than_50_characters():
    result = run_settings(SECRET_KEY="k" * 49)

    assert result.returncode != 0
    assert "SECRET_KEY must be at least 50 characters long" in result.stderr
    assert run_settings(SECRET_KEY=LONG_KEY).stdout.strip() == LONG_KEY


def test_local_mode_makes_a_random_key_per_checkout_and_keeps_it(tmp_path):
    first = run_settings(DEBUG="true", VAR_DIR=str(tmp_path / "a")).stdout.strip()
    again = run_settings(DEBUG="true", VAR_DIR=str(tmp_path / "a")).stdout.strip()
    other = run_settings(DEBUG="true", VAR_DIR=str(tmp_path / "b")).stdout.strip()

    assert len(first) >= 50
    assert first == again == (tmp_path / "a" / "secret-key").read_text().strip()
    assert other != first  # nothing published in the repository signs a local run's tokens
    assert stat.S_IMODE((tmp_path / "a" / "secret-key").stat().st_mode) == 0o600


def test_a_given_key_is_used_as_it_is_in_either_mode(tmp_path):
    assert run_settings(SECRET_KEY=LONG_KEY).stdout.strip() == LONG_KEY
    assert run_settings(DEBUG="true", SECRET_KEY="short", VAR_DIR=str(tmp_path)).stdout.strip() == (
        "short"
    )


def test_local_mode_sends_the_security_headers_production_sends(tmp_path):
    show = "(settings.SECURE_CONTENT_TYPE_NOSNIFF, settings.SECURE_REFERRER_POLICY)"

    local = run_settings(show=show, DEBUG="true", VAR_DIR=str(tmp_path)).stdout.strip()
    production = run_settings(show=show, SECRET_KEY=LONG_KEY).stdout.strip()

    assert local == production == "(True, 'same-origin')"
