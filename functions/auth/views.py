"""Tokens and the caller's identity."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from common.api.tokens import LogoutSerializer
from functions.auth.serializers import MeSerializer


class TokenObtain(jwt_views.TokenObtainPairView):
    """Exchange a username and password for an access and a refresh token.

    5 failed attempts for one username within 15 minutes, or 30 from one address within a
    minute, and every further attempt is 429 until the window passes, a right password included.
    """

    documented_errors = {
        "401": "Wrong username or password.",
        "429": "Too many failed attempts for this username or from this address.",
        "503": "The database is busy, or the login limits cannot be counted; retry shortly.",
    }


class TokenRefresh(jwt_views.TokenRefreshView):
    """Exchange a refresh token for a new access and refresh token; the one sent is revoked."""

    documented_errors = {"401": "Bad, expired or revoked refresh token."}


class Logout(jwt_views.TokenViewBase):
    """Revoke a refresh token: refreshing with it again is 401."""

    serializer_class = LogoutSerializer
    documented_errors = {"401": "Bad, expired or already revoked refresh token."}

    @extend_schema(responses={204: None})
    def post(self, request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except TokenError as exc:
            raise InvalidToken(exc.args[0]) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


class Me(generics.RetrieveAPIView):
    """The authenticated caller."""

    serializer_class = MeSerializer

    def get_object(self):
        return self.request.user
