"""`python -m scheduled.ready`: exit 0 when the broker answers, 1 otherwise.

A container healthcheck for the worker and Beat, which serve no HTTP.
"""

import os
import sys

import django


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "common.infra.settings")
    django.setup()
    from scheduled.readiness import broker_ping

    try:
        broker_ping()
    except ConnectionError as exc:
        print(f"not ready: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
