"""The names of the list cache: versions, pages, locks, and the query a page is built from.

A page is named by its resource, the versions it depends on, and everything that changes its
bytes: the absolute URL its links start with and the canonical query (only the parameters the
list understands, in sorted order, each with the value the list reads: the last one given).
Parameters the list ignores leave the name, and the page, unchanged.
"""

import functools
import hashlib

from django.http import QueryDict

_parameters: dict[str, frozenset[str]] = {}  # resource -> the query parameters its list reads


def register_list(resource: str, parameters: frozenset[str]) -> None:
    _parameters[resource] = parameters


def list_parameters(resource: str) -> frozenset[str] | None:
    """The parameters of `resource`'s list, once its view is loaded; None before."""
    return _parameters.get(resource)


def canonical_query(query: QueryDict, parameters: frozenset[str]) -> str:
    canonical = QueryDict(mutable=True)
    for name in sorted(parameters & query.keys()):
        canonical[name] = str(query[name])  # the last value, as the filters and paginator read it
    return canonical.urlencode()


def page_versions(resource: str, project: str | None) -> list[str]:
    """The version names a list page of `resource` depends on."""
    if resource == "tasks" and project and project.isascii() and project.isdigit():
        return [f"tasks:project:{int(project)}", "users"]
    return [resource, "users"]


def version_name(name: str) -> str:
    return f"version:{name}"


def page_name(
    resource: str, versions: dict[str, int], base_url: str, query: str, audience: str
) -> str:
    """`audience`: who may share the page (reader_audience)."""
    digest = hashlib.blake2b(f"{base_url}?{query}|{audience}".encode(), digest_size=16).hexdigest()
    stamp = ".".join(str(versions[name]) for name in sorted(versions))
    # `pages:`, not the `page:` of pages stored without their ETag (before it was part of them):
    # a process of either kind reads only its own format.
    return f"pages:{resource}:{stamp}:{digest}"


def count_name(resource: str, versions: dict[str, int], query: str, audience: str) -> str:
    """The row count of a filtered list (`query` without its paging), for every page of it."""
    digest = hashlib.blake2b(f"{query}|{audience}".encode(), digest_size=16).hexdigest()
    stamp = ".".join(str(versions[name]) for name in sorted(versions))
    return f"count:{resource}:{stamp}:{digest}"


def page_end_name(counted: str, size: str, number: int) -> str:
    """The last id of page `number` of `size` (as the query gives it) of the list `counted`
    (count_name) names: under the same versions and audience as the count."""
    return f"end:{counted}:{size}:{number}"


def memberships_value(memberships: dict[int, str]) -> bytes:
    """A reader's memberships as the hit path reads them: `5:owner,9:viewer`, by project id."""
    return ",".join(f"{project}:{role}" for project, role in sorted(memberships.items())).encode()


@functools.lru_cache(maxsize=4096)  # bounded; the same readers come back
def reader_audience(resource: str, project: str | None, memberships: bytes) -> str | None:
    """Which readers share this reader's page of `resource`, or None: they may not see it.

    A page shows only rows of projects its reader is a member of (and, for projects, the
    reader's role in each). So a task page of one project (`?project=ID`) is shared by every
    member of it; an unfiltered task page by every reader of the same projects; a project page
    by every reader with the same roles in the same projects.
    """
    roles = dict(item.split(":", 1) for item in memberships.decode().split(",") if item)
    if resource == "tasks" and project:
        if not (project.isascii() and project.isdigit()) or str(int(project)) not in roles:
            return None  # not theirs (or not a project): Django answers, a 400
        return f"project:{int(project)}"
    if resource == "tasks":
        return "projects:" + ",".join(roles)
    return "roles:" + memberships.decode()


def lock_name(page: str) -> str:
    return f"lock:{page}"


def active_user_name(user_id) -> str:
    """Present while the hit path may serve this user, holding vouch_value: set by Django after
    it authenticated the user and read their memberships."""
    return f"user-active:{user_id}"


def vouch_value(password_claim: str, renew_at: int, memberships: bytes) -> bytes:
    """What Django vouches for a user with: the password claim their tokens must carry (a token
    made before a password change carries another), when the hit path should let Django renew
    the vouch (unix seconds, before the key lapses), and their memberships (memberships_value)."""
    return b"%s|%d|%s" % (password_claim.encode(), renew_at, memberships)


def read_vouch(vouch: bytes, token_claim: object) -> tuple[bytes, int] | None:
    """The memberships of a vouch and when to renew it, when `token_claim` is the one it names;
    else None."""
    claim, _, rest = vouch.partition(b"|")
    if not isinstance(token_claim, str) or claim != token_claim.encode():
        return None
    renew_at, _, memberships = rest.partition(b"|")
    try:
        return memberships, int(renew_at)
    except ValueError:
        return None
