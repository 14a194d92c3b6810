"""Who is on a websocket: the JWT access token from `?token=`, the subprotocols or a header.

A browser cannot set headers on a websocket, and a query string ends up in access logs: it can
offer the subprotocols `bearer` and the token instead (`new WebSocket(url, ["bearer", token])`),
and the server accepts with `bearer`.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken

from common.api.bearer import asgi_bearer_token, password_claim

BEARER_SUBPROTOCOL = "bearer"


@dataclass(frozen=True)
class Caller:
    username: str
    expires_at: datetime
    password_claim: str  # the token's: the socket closes when the user's password changes


async def authenticate(scope: dict) -> Caller | None:
    """The caller behind a valid, unexpired access token of an active user, made since their
    password last changed (its password claim), else None."""
    raw = _raw_token(scope)
    if not raw:
        return None
    try:
        token = AccessToken(raw)
        expires_at = datetime.fromtimestamp(token["exp"], UTC)
    except (TokenError, OverflowError, ValueError, TypeError):  # bad, or signed nonsense
        return None
    claim = token.get(api_settings.REVOKE_TOKEN_CLAIM)
    if not isinstance(claim, str):
        return None
    username = await _active_username(token[api_settings.USER_ID_CLAIM], claim)
    if username is None:
        return None
    return Caller(username=username, expires_at=expires_at, password_claim=claim)


def accepted_subprotocol(scope: dict) -> str | None:
    """`bearer` when the client offered it: a browser drops a handshake that picks none."""
    return BEARER_SUBPROTOCOL if BEARER_SUBPROTOCOL in (scope.get("subprotocols") or []) else None


def _raw_token(scope: dict) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin1"))
    if query.get("token"):
        return query["token"][0]
    if accepted_subprotocol(scope):
        offered = scope["subprotocols"]
        return next((value for value in offered if value != BEARER_SUBPROTOCOL), None)
    return asgi_bearer_token(scope)


@database_sync_to_async
def _active_username(user_id, claim: str) -> str | None:
    try:
        user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    except (ValueError, TypeError):  # a signed token whose user id is not an id
        return None
    if user is None or password_claim(user.password) != claim:
        return None
    return user.get_username()
