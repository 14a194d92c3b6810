"""JWT authentication that answers 401, never 500, for any token a client can present.

The REST authentication class of every function. It hands each request to simplejwt's
JWTAuthentication (common.api.tokens), imported at the first request that authenticates rather
than at the function's start: simplejwt's settings module imports django.test, tens of
milliseconds of every cold start (bench cold_start).
"""

from rest_framework.authentication import BaseAuthentication


class JWTAuthentication(BaseAuthentication):
    def authenticate(self, request):
        return _simplejwt().authenticate(request)

    def authenticate_header(self, request) -> str | None:
        return _simplejwt().authenticate_header(request)


def _simplejwt() -> BaseAuthentication:
    from common.api.tokens import JWTAuthentication as SimpleJWTAuthentication

    return SimpleJWTAuthentication()
