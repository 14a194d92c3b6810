"""A user's tokens end when the user changes, however the change is made.

What ends them is the user's row itself, read wherever a token is used: its `is_active`, and its
password hash, a digest of which every token carries (common.api.tokens). REST reads the
row on every request, so it sees every change at once, a bulk `update()` or raw SQL included;
websockets read it again every few seconds (realtime.fanout). The cache's hit path in front of
Django reads no database: Django vouches there for a user for ACTIVE_USER_SECONDS at most
(common.infra.cache.pages), and a change made through the ORM's `save()` or `delete()` (the
services, the admin, `set_password()` and `save()` in a shell) takes the vouch away after commit,
through these receivers and the one after-commit step (common.domain.effects). A bulk `update()`
or raw SQL sends no signal: the user table's trigger tells the realtime service, which takes the
vouch away (common.infra.user_changes); if it misses that, the vouch lapses within
ACTIVE_USER_SECONDS.

A deactivation also revokes the user's outstanding refresh tokens, so they stay dead if the user
is activated again: on PostgreSQL the trigger does it in the deactivation's own transaction,
however it was made; elsewhere (the local SQLite file) the receiver here, on save().
"""

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models.signals import post_delete, post_save
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from common.domain import effects


def _user_saved(sender, instance, created: bool = False, **kwargs) -> None:
    if created:  # nothing knows a new user yet
        return
    if not instance.is_active and connection.vendor != "postgresql":  # there: the trigger
        revoke_refresh_tokens(instance)
    effects.on_commit(users_gone=[instance.pk])


def _user_deleted(sender, instance, **kwargs) -> None:
    effects.on_commit(users_gone=[instance.pk])


def revoke_refresh_tokens(user) -> None:
    """Blacklist every outstanding refresh token of `user`."""
    outstanding = OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True)
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in outstanding.only("id")], ignore_conflicts=True
    )


def connect() -> None:
    user_model = get_user_model()
    post_save.connect(_user_saved, sender=user_model, dispatch_uid="taskwire-user-saved")
    post_delete.connect(_user_deleted, sender=user_model, dispatch_uid="taskwire-user-deleted")
