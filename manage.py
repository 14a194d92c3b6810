#!/usr/bin/env python
"""Django's command-line utility for administrative tasks.

In a checkout it runs in local mode, as `make run` does (DEBUG defaults to true): the same
database, signing key and state under var/, with no variable to set. Production says so
explicitly with DEBUG=false (the Docker image sets it), and then the settings refuse to start
without their secrets. Its commands see every app the functions use, the admin's sessions
and history among them (functions.admin.settings: the shared settings and the admin's).
"""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "functions.admin.settings")
    os.environ.setdefault("DEBUG", "true")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
