"""simplejwt, answering 401, never 500, for any token a client can present.

Imported at the first request that authenticates (common.api.authentication), not at a
function's start: simplejwt's settings module imports django.test.
"""

from django.core.exceptions import ObjectDoesNotExist
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt import authentication, serializers
from rest_framework_simplejwt.exceptions import InvalidToken

from common.api.bearer import bearer_token

# What a validly signed token with nonsense claims raises (a non-numeric user id, an exp
# past year 9999) on its way through the ORM or datetime.
_BAD_CLAIMS = (ValueError, TypeError, OverflowError)


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
        try:
            return super().get_user(validated_token)
        except _BAD_CLAIMS as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc


class TokenRefreshSerializer(serializers.TokenRefreshSerializer):
    def validate(self, attrs):
        try:
            return super().validate(attrs)
        except _BAD_CLAIMS as exc:
            raise InvalidToken("Token is invalid") from exc
        except ObjectDoesNotExist as exc:  # the token's user was deleted: as for a deactivated one
            raise AuthenticationFailed(
                self.error_messages["no_active_account"], "no_active_account"
            ) from exc
