"""Users whose tokens ended, as the database tells it: LISTEN to the user table's trigger.

Migration 0010 makes PostgreSQL notify `CHANNEL` with a user's id when the user is deactivated,
given another password or deleted, however that is done: the ORM's save() (which Django's signals
see too, common.domain.revocation), a bulk QuerySet.update() or raw SQL (which no signal sees).
`follow` listens on a connection of its own and, for each id, takes the user's vouch away from the
cache's hit path at once, so that a bulk deactivation ends the user's cached reads on their next
request, as a save() does.

It runs in the realtime service (realtime.handler's lifespan; in `make run`, the gateway's), which
every deployment keeps running, and also closes that user's open sockets at once. While it is not
connected (the database restarting, the service down) a notification is missed, and the vouch
then lapses by itself within the cache's ACTIVE_USER_SECONDS, as before.
"""

import asyncio
import logging
from collections.abc import Callable

import psycopg
from django.conf import settings
from psycopg import sql

from common.infra.cache import cache_forget_user

logger = logging.getLogger(__name__)

CHANNEL = "taskwire_user_revoked"  # migration 0010's trigger notifies here
RECONNECT_SECONDS = (0.5, 1.0, 2.0, 5.0)


def listens() -> bool:
    """Whether there is a trigger to listen to: PostgreSQL only."""
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def _conninfo() -> str:
    """The default database's connection string, read when connecting (tests rename it)."""
    database = settings.DATABASES["default"]
    params = {
        "dbname": database["NAME"],
        "user": database.get("USER"),
        "password": database.get("PASSWORD"),
        "host": database.get("HOST"),
        "port": database.get("PORT"),
    }
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in params.items() if v})


async def follow(on_revoked: Callable[[int], None] = lambda user_id: None) -> None:
    """Forever: forget on the hit path each user the database says lost their tokens, then tell
    `on_revoked` (which must not block). Cancel the task to stop."""
    failures = 0
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                _conninfo(), autocommit=True, connect_timeout=5
            ) as connection:
                await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
                failures = 0
                async for notify in connection.notifies():
                    user_id = int(notify.payload)
                    await asyncio.to_thread(cache_forget_user, user_id)
                    on_revoked(user_id)
        except (psycopg.Error, OSError) as exc:
            wait = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
            failures += 1
            logger.warning("user changes: not listening, again in %ss: %s", wait, exc)
            await asyncio.sleep(wait)
