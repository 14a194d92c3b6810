"""Tokens and the caller's identity."""

from rest_framework import generics
from rest_framework_simplejwt import views as jwt_views

from functions.auth.serializers import MeSerializer


class TokenObtain(jwt_views.TokenObtainPairView):
    """Exchange a username and password for an access and a refresh token."""

    documented_errors = {"401": "Wrong username or password."}


class TokenRefresh(jwt_views.TokenRefreshView):
    """Exchange a refresh token for a new access token."""

    documented_errors = {"401": "Bad or expired refresh token."}


class Me(generics.RetrieveAPIView):
    """The authenticated caller."""

    serializer_class = MeSerializer

    def get_object(self):
        return self.request.user
