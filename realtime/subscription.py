"""What a websocket client asked for: `?projects=1,5` and `?since=5:17,9:3`."""

from dataclasses import dataclass, field
from urllib.parse import parse_qs

MAX_PROJECTS = 100  # each is a subscription held for the socket's life


class SubscriptionError(ValueError):
    """The query string does not say which projects or cursors in a way we can read."""


@dataclass(frozen=True)
class Subscription:
    projects: frozenset[int] = frozenset()  # empty: every project
    since: dict[int, int] = field(default_factory=dict)  # project -> last seq seen

    def wants(self, project_id: int) -> bool:
        return not self.projects or project_id in self.projects


def parse_subscription(query_string: bytes) -> Subscription:
    query = parse_qs(query_string.decode("latin1"))
    projects = frozenset(_ids(query.get("projects", [""])[0]))
    if len(projects) > MAX_PROJECTS:
        raise SubscriptionError(f"projects: at most {MAX_PROJECTS} ids")
    since: dict[int, int] = {}
    for item in _items(query.get("since", [""])[0]):
        project, sep, seq = item.partition(":")
        if not sep:
            raise SubscriptionError(f"since: {item!r} is not PROJECT:SEQ")
        since[_id(project, "since")] = _id(seq, "since", minimum=0)
    return Subscription(projects=projects, since=since)


def _items(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _ids(value: str) -> list[int]:
    return [_id(item, "projects") for item in _items(value)]


def _id(text: str, name: str, minimum: int = 1) -> int:
    if not text.strip().isdigit() or len(text.strip()) > 18 or int(text) < minimum:
        raise SubscriptionError(f"{name}: {text!r} is not a valid number")
    return int(text)
