"""realtime.eager: a coroutine run in its caller until it must wait, a task only from then on.

Pins the coroutine protocol it relies on (Python 3.11's asyncio and uvloop's loop), so that a
change of either shows here rather than as events that never arrive."""

import asyncio
import contextvars

import pytest
import uvloop

from realtime import eager

mark = contextvars.ContextVar("mark", default="unset")


async def _steps(log: list, *, wait: bool, fail: str | None = None) -> None:
    mark.set("inside")
    log.append("before")
    if fail == "before":
        raise ValueError("before")
    if wait:
        await asyncio.sleep(0.01)
        log.append(("after", mark.get()))
        result = await asyncio.get_running_loop().run_in_executor(None, lambda: 42)
        log.append(result)
    if fail == "after":
        raise ValueError("after")
    log.append("done")


LOOPS = pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])


@LOOPS
def test_a_coroutine_that_does_not_wait_is_done_in_the_call_with_no_task(run) -> None:
    run(_a_coroutine_that_does_not_wait_is_done_in_the_call_with_no_task())


async def _a_coroutine_that_does_not_wait_is_done_in_the_call_with_no_task() -> None:
    log: list = []
    tasks = len(asyncio.all_tasks())

    assert eager.start(_steps(log, wait=False)) is None
    assert log == ["before", "done"]
    assert len(asyncio.all_tasks()) == tasks
    assert mark.get() == "unset"  # what it set stayed in its own context


@LOOPS
def test_a_coroutine_that_waits_goes_on_in_a_task_in_its_own_context(run) -> None:
    run(_a_coroutine_that_waits_goes_on_in_a_task_in_its_own_context())


async def _a_coroutine_that_waits_goes_on_in_a_task_in_its_own_context() -> None:
    log: list = []

    task = eager.start(_steps(log, wait=True))

    assert task is not None
    assert log == ["before"]  # run up to its first wait, in the call
    await asyncio.wait_for(task, 5)
    assert log == ["before", ("after", "inside"), 42, "done"]
    assert mark.get() == "unset"


@LOOPS
def test_an_error_before_the_first_wait_is_the_callers_and_after_it_the_tasks(run) -> None:
    run(_an_error_before_the_first_wait_is_the_callers_and_after_it_the_tasks())


async def _an_error_before_the_first_wait_is_the_callers_and_after_it_the_tasks() -> None:
    with pytest.raises(ValueError, match="before"):
        eager.start(_steps([], wait=True, fail="before"))

    task = eager.start(_steps([], wait=True, fail="after"))
    assert task is not None
    with pytest.raises(ValueError, match="after"):
        await asyncio.wait_for(task, 5)


@LOOPS
def test_cancelling_the_task_cancels_the_coroutine_where_it_waits(run) -> None:
    run(_cancelling_the_task_cancels_the_coroutine_where_it_waits())


async def _cancelling_the_task_cancels_the_coroutine_where_it_waits() -> None:
    log: list = []

    async def waits_forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            log.append("cleaned up")

    task = eager.start(waits_forever())
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert log == ["cleaned up"]


@LOOPS
def test_the_context_given_is_the_one_it_runs_in(run) -> None:
    run(_the_context_given_is_the_one_it_runs_in())


async def _the_context_given_is_the_one_it_runs_in() -> None:
    context = contextvars.copy_context()
    context.run(mark.set, "given")
    seen: list = []

    async def read() -> None:
        seen.append(mark.get())
        await asyncio.sleep(0)
        seen.append(mark.get())

    task = eager.start(read(), context)
    assert task is not None
    await task
    assert seen == ["given", "given"]
