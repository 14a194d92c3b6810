"""The route table: which function answers which path. The compose gateway routes the same way.

First match wins, so the comments route stands before the tasks route it nests under.
"""

import re

ROUTES: tuple[tuple[str, str], ...] = (
    (r"^/tasks/[^/]+/comments/", "comments"),
    (r"^/tasks/", "tasks"),
    (r"^/projects/", "projects"),
    (r"^/auth/", "auth"),
    (r"^/ws/", "realtime"),
    (r"^/(healthz|readyz)$", "auth"),
    (r"^/(admin|static/admin)/", "admin"),  # Django's admin, and its own CSS and scripts
    (r"^/(docs|schema|static|local)/", "local"),  # local runs only: docs, outbox, jobs
    (r"^/$", "local"),  # local runs only: the page (local/page/)
)

_COMPILED = tuple((re.compile(pattern), target) for pattern, target in ROUTES)


def route(path: str) -> str | None:
    """The name of the function that serves `path`, or None."""
    for pattern, target in _COMPILED:
        if pattern.match(path):
            return target
    return None
