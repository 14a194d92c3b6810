"""Run a coroutine at once, in the caller, and make a task of it only if it has to wait.

What Python 3.12's asyncio.eager_task_factory does, for the 3.11 this project runs on (drop this
module for it then). A socket's send usually completes without waiting (its bytes go into the
transport's buffer), so the hub sends each event to each idle socket right away, without
scheduling a task per socket per event (bench ws_latency); a send that must wait (a slow
client's full buffer) carries on in a task of its own and holds up no one else.

It relies on the coroutine protocol only (send/throw/close, a suspension yielding the future it
waits for, as asyncio's Task drives it); realtime/tests/test_eager.py pins that behaviour.
"""

import asyncio
import contextvars
from collections.abc import Coroutine, Generator
from typing import Any

_STARTED = object()  # the coroutine's first suspension has been handed to the task already


def start(
    coroutine: Coroutine[Any, Any, None], context: contextvars.Context | None = None
) -> asyncio.Task | None:
    """Run `coroutine` now up to its first suspension: None if it finished (an exception it
    raises propagates to the caller), else the task that runs the rest of it. Both in
    `context` (a copy of the caller's by default, as a task's): what it sets (asgiref's, say)
    stays out of the caller's."""
    if context is None:
        context = contextvars.copy_context()
    try:
        awaiting = context.run(coroutine.send, None)
    except StopIteration:
        return None
    loop = asyncio.get_running_loop()
    return loop.create_task(_rest(_Started(coroutine, awaiting)), context=context)


async def _rest(started: "_Started") -> None:
    await started


class _Started:
    """Awaitable: the rest of a coroutine that has yielded `awaiting` (a future) already."""

    def __init__(self, coroutine: Coroutine[Any, Any, None], awaiting: Any) -> None:
        self.coroutine, self.awaiting = coroutine, awaiting

    def __await__(self) -> Generator[Any, Any, None]:
        return self  # type: ignore[return-value]

    def __iter__(self) -> "_Started":
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def send(self, value: Any) -> Any:
        if self.awaiting is not _STARTED:  # the task's first step: the suspension we met
            awaiting, self.awaiting = self.awaiting, _STARTED
            return awaiting
        return self.coroutine.send(value)

    def throw(self, *exc: Any) -> Any:
        return self.coroutine.throw(*exc)

    def close(self) -> None:
        self.coroutine.close()
