"""The names of the list cache: versions, pages, locks, and the query a page is built from.

A page is named by its resource, the versions it depends on, and everything that changes its
bytes: the absolute URL its links start with and the canonical query (only the parameters the
list understands, in sorted order, each with the value the list reads: the last one given).
Parameters the list ignores leave the name, and the page, unchanged.
"""

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
    resource: str, versions: dict[str, int], base_url: str, query: str, reader: str
) -> str:
    """`reader` is the caller's user id: until pages are shared by what their readers may see,
    each user's pages are their own (lists show only the caller's projects and role)."""
    digest = hashlib.blake2b(f"{base_url}?{query}".encode(), digest_size=16).hexdigest()
    stamp = ".".join(str(versions[name]) for name in sorted(versions))
    return f"page:{resource}:{stamp}:u{reader}:{digest}"


def lock_name(page: str) -> str:
    return f"lock:{page}"


def active_user_name(user_id) -> str:
    """Present while the hit path may serve this user (set by Django after it authenticated)."""
    return f"user-active:{user_id}"
