"""simplejwt, answering 401, never 500, for any token a client can present.

Imported at the first request that authenticates (common.api.authentication), not at a
function's start: simplejwt's settings module imports django.test.

Tokens end (CONTRACT section 1): every token carries a digest of its user's password hash
(simplejwt's CHECK_REVOKE_TOKEN), so a password change, however it is made, ends all of them;
authentication reads the user's row on every request, so a deactivated or deleted user is
refused at once. Refresh tokens rotate: each is good for one refresh, which revokes it
(blacklists it, under its row lock, so two concurrent refreshes with one token get one answer),
as does /auth/logout/.
"""

from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt import authentication, serializers
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from common.api.bearer import bearer_token, password_claim
from common.api.limits import login_attempt

# What a validly signed token with nonsense claims raises (a non-numeric user id, an exp
# past year 9999) on its way through the ORM or datetime.
_BAD_CLAIMS = (ValueError, TypeError, OverflowError)


def token_password_claim(token) -> str | None:
    return token.get(api_settings.REVOKE_TOKEN_CLAIM)


class JWTAuthentication(authentication.JWTAuthentication):
    def get_raw_token(self, header: bytes) -> bytes | None:
        token = bearer_token(header)  # a malformed header carries no token: 401 as for none
        return token.encode("latin-1") if token else None

    def get_validated_token(self, raw_token: bytes):
        try:
            return super().get_validated_token(raw_token)
        except _BAD_CLAIMS as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc

    def get_user(self, validated_token):
        try:  # simplejwt checks is_active and the password claim (CHECK_REVOKE_TOKEN)
            return super().get_user(validated_token)
        except _BAD_CLAIMS as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc


class TokenObtainPairSerializer(serializers.TokenObtainPairSerializer):
    """A token pair for a username and password, within the login limits (common.api.limits)."""

    def validate(self, attrs):
        with login_attempt(self.context["request"], attrs[self.username_field]):
            return super().validate(attrs)


class TokenRefreshSerializer(serializers.TokenRefreshSerializer):
    """A new pair for a refresh token, which is revoked: each is good for one refresh."""

    def validate(self, attrs):
        try:
            with transaction.atomic():
                _lock_unrevoked(attrs["refresh"])
                return super().validate(attrs)
        except _BAD_CLAIMS as exc:
            raise InvalidToken("Token is invalid") from exc
        except ObjectDoesNotExist as exc:  # the token's user was deleted: as for a deactivated one
            raise AuthenticationFailed(
                self.error_messages["no_active_account"], "no_active_account"
            ) from exc


def _lock_unrevoked(raw: str) -> None:
    """Lock the refresh token's row; TokenError unless it is outstanding, unrevoked and of its
    user's current password. The lock holds a concurrent refresh of the same token until this
    one commits its revocation, after which that one finds it revoked."""
    token = RefreshToken(raw)  # type: ignore[arg-type]  # a raw token: signature, expiry, blacklist
    jti = token[api_settings.JTI_CLAIM]
    if not OutstandingToken.objects.select_for_update().filter(jti=jti).exists():
        raise TokenError("Token is not known")  # made elsewhere, or before tokens were recorded
    if BlacklistedToken.objects.filter(token__jti=jti).exists():
        raise TokenError("Token is blacklisted")
    user = get_user_model().objects.get(
        **{api_settings.USER_ID_FIELD: token[api_settings.USER_ID_CLAIM]}
    )
    if token_password_claim(token) != password_claim(user.password):
        raise TokenError("The user's password has been changed")


class LogoutSerializer(serializers.TokenBlacklistSerializer):
    """Revoke a refresh token (TokenError, answered 401, for one not valid or already revoked)."""
