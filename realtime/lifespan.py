"""The realtime service's lifespan: while it runs, it follows the database's user changes.

A user deactivated, deleted or given another password, however that was done (a bulk update()
too), loses the cache's hit path at once and their open sockets close with 4401 at once
(common.infra.user_changes); without the notification they close within the hub's
ACTIVE_CHECK_SECONDS and the hit path's vouch lapses by itself.
"""

import asyncio
import contextlib

from common.infra import user_changes
from realtime import fanout


async def lifespan(scope, receive, send) -> None:
    follower: asyncio.Task | None = None
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if user_changes.listens():
                follower = asyncio.create_task(user_changes.follow(_check_users))
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if follower is not None:
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower
            await send({"type": "lifespan.shutdown.complete"})
            return


def _check_users(user_id: int) -> None:
    fanout.hub().check_users()
