"""The one reading of `Authorization: Bearer <token>`: for REST, the hit path and the websocket."""


def bearer_token(authorization: str | bytes | None) -> str | None:
    """The token of an Authorization header value naming a type in AUTH_HEADER_TYPES, else None.

    Anything else (no value, another scheme, no token, more than one) carries no bearer token.
    """
    if not authorization:
        return None
    from rest_framework_simplejwt.settings import api_settings  # not at start: see authentication

    if isinstance(authorization, bytes):
        authorization = authorization.decode("latin-1")
    parts = authorization.split()
    if len(parts) != 2 or parts[0] not in api_settings.AUTH_HEADER_TYPES:
        return None
    return parts[1]


def asgi_bearer_token(scope: dict) -> str | None:
    """The bearer token of an ASGI request's first Authorization header, else None."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return bearer_token(value)
    return None


def password_claim(password_hash: str) -> str:
    """The claim every token of a user with this password hash carries (CHECK_REVOKE_TOKEN):
    a token whose claim is not the user's current one was made before a password change."""
    from rest_framework_simplejwt.utils import get_md5_hash_password  # not at start

    return get_md5_hash_password(password_hash)
