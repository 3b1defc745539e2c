"""Edges of what a JobManager is given (issue 8): functions that are not ``async def fn(ctx)``,
Policy-decorated functions, the name rule, far-future schedules, hostile results, errors and progress
messages, ``set_progress`` from a worker thread, and a cancel between two retry attempts.

Each test names, in its docstring, the defect of issue 8 it covers; each failed against the
manager as it was before the rebuild (f2b408b), except where a docstring says it is a guard.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

import anyjob
from anyjob import Context, Job, JobManager, State, instrumentation
from anyjob.instrumentation import HookEvent

pytestmark = pytest.mark.anyio

STORES = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(autouse=True)
def _quiet() -> None:
    instrumentation.set_hooks([])


async def ok(ctx: Context) -> str:
    return "ok"


# -- functions that are not async def fn(ctx) --------------------------------------------------------


def _sync(ctx: Context) -> str:
    return "sync"


async def _no_argument() -> str:
    return "no argument"


NOT_JOB_FUNCTIONS: dict[str, Callable[[], Any]] = {
    "sync_function": lambda: _sync,
    "lambda": lambda: (
        lambda ctx: anyio.lowlevel.checkpoint()
    ),  # returns an awaitable, but is no async function
    "zero_argument_async_function": lambda: _no_argument,
}


@pytest.mark.parametrize("kind", list(NOT_JOB_FUNCTIONS))
async def test_submit_refuses_what_is_not_an_async_function_of_ctx(kind: str) -> None:
    """Issue 8: "``submit`` accepts a sync function, a lambda or a zero-argument function and fails
    later with a raw TypeError". It raises TypeError at the call (as for a non-callable), and
    nothing is stored."""
    async with JobManager() as jobs:
        with pytest.raises(TypeError, match="async"):
            await jobs.submit(NOT_JOB_FUNCTIONS[kind]())
        with pytest.raises(TypeError):
            await jobs.submit(42)  # type: ignore[arg-type]
        assert await jobs.list() == []


@pytest.mark.parametrize("kind", list(NOT_JOB_FUNCTIONS))
async def test_register_refuses_what_is_not_an_async_function_of_ctx(kind: str) -> None:
    """Issue 8: "``submit``/``register`` refuse what is not an ``async def fn(ctx)`` with a clear
    TypeError at the call"; today register takes a sync function, a lambda or a zero-argument one."""
    jobs = JobManager()
    with pytest.raises(TypeError, match="async"):
        jobs.register(NOT_JOB_FUNCTIONS[kind](), name="bad")
    with pytest.raises(TypeError):
        jobs.register(42, name="bad")  # type: ignore[arg-type]
    async with jobs:
        with pytest.raises(ValueError, match="bad"):  # nothing was registered under the name
            await jobs.submit("bad")


async def test_a_policy_decorated_function_runs_once_per_attempt_with_its_policy() -> None:
    """Issue 8: "A function decorated with a ``Policy`` and then given to ``submit`` ... runs with
    ``ctx.params`` being a ``Context``, and nests retries". It runs its undecorated function under
    the policy's retry: 2 attempts recorded, 2 runs, the params as given."""
    runs: list[Any] = []

    @anyjob.Policy(retry=anyjob.Retry(2, delay=0))
    async def always_fails(ctx: Context) -> None:
        runs.append(ctx.params)
        raise RuntimeError("always")

    async with JobManager() as jobs:
        ref = await jobs.submit(always_fails, {"n": 1})
        with anyio.fail_after(5):
            info = await jobs.wait(ref.id)
    assert info is not None
    assert info.state is State.FAILED
    assert info.error_type == "RuntimeError"
    assert (info.attempts, len(runs)) == (2, 2)
    assert runs == [{"n": 1}, {"n": 1}]


async def test_a_policy_decorated_function_with_retry_too_is_refused() -> None:
    """Issue 8: a Policy-decorated function given to ``submit`` with ``retry=`` as well would nest
    retries; it raises TypeError at the call and nothing is stored."""

    @anyjob.Policy(retry=anyjob.Retry(2, delay=0))
    async def decorated(ctx: Context) -> None:
        pytest.fail("ran")

    async with JobManager() as jobs:
        with pytest.raises(TypeError, match=r"[Pp]olicy"):
            await jobs.submit(decorated, retry=3)
        assert await jobs.list() == []


async def test_an_empty_name_is_a_value_error_as_for_a_job() -> None:
    """Issue 8: "``submit(f, name="")`` raises TypeError where ``Job(f, name="")`` raises ValueError"."""
    with pytest.raises(ValueError, match="name"):
        Job(ok, name="")
    async with JobManager() as jobs:
        with pytest.raises(ValueError, match="name"):
            await jobs.submit(ok, name="")
        assert await jobs.list() == []


# -- far-future schedules ------------------------------------------------------------------------------------


FAR_FUTURE: dict[str, dict[str, Any]] = {
    "delay_1e12": {"delay": 1e12},
    "at_datetime_max": {"at": datetime.max.replace(tzinfo=UTC)},
    "delay_timedelta_max": {"delay": timedelta.max},
}


@pytest.mark.parametrize("store_kind", STORES)
@pytest.mark.parametrize("when", list(FAR_FUTURE))
async def test_a_far_future_start_is_refused_and_nothing_is_stored(make_store: Any, when: str) -> None:
    """Issue 8: "A far-future ``delay``/``at`` (``1e12``, ``datetime.max``, ``timedelta.max``) raises at
    ``submit`` but stores the job anyway, and ``list()`` then fails for the whole store". It raises
    ValueError, nothing is stored, and the manager keeps working."""
    async with JobManager(store=make_store()) as jobs:
        with pytest.raises(ValueError) as caught:
            await jobs.submit(ok, **FAR_FUTURE[when])
        assert await jobs.list() == []  # today: ValueError "year ... is out of range" for the whole store
        assert re.search(r"\b(delay|at)\b", str(caught.value)), caught.value
        assert (await jobs.stats()).total == 0
        ref = await jobs.submit(ok)
        with anyio.fail_after(5):
            info = await jobs.wait(ref.id)
        assert info is not None
        assert info.state is State.SUCCEEDED


# -- bad data affects only its own job -----------------------------------------------------------------------


class _Unprintable(Exception):  # noqa: N818 - named for what it is
    def __str__(self) -> str:
        raise RuntimeError("this exception cannot be shown")


async def _cyclic(ctx: Context) -> Any:
    value: list[Any] = []
    value.append(value)
    return value


async def _deep(ctx: Context) -> Any:
    value: list[Any] = []
    for _ in range(900):
        value = [value]
    return value


async def _huge(ctx: Context) -> Any:
    return 10**5000


async def _unprintable_error(ctx: Context) -> Any:
    raise _Unprintable


def _reports(message: str) -> Callable[[Context], Any]:
    async def report(ctx: Context) -> str:
        try:
            ctx.set_progress(0.5, message)
        except ValueError:
            return "refused"
        return "accepted"

    return report


#: name -> (function, expected state, expected result)
BAD_DATA: dict[str, tuple[Callable[[Context], Any], State, Any]] = {
    "cyclic_result": (_cyclic, State.FAILED, None),
    "900_deep_result": (_deep, State.FAILED, None),
    "10**5000_result": (_huge, State.FAILED, None),
    "unprintable_exception": (_unprintable_error, State.FAILED, None),
    "surrogate_progress_message": (_reports("file \udcff.txt"), State.SUCCEEDED, "refused"),
    "nul_progress_message": (_reports("a\x00b"), State.SUCCEEDED, "refused"),
}


@pytest.mark.parametrize("store_kind", STORES)
@pytest.mark.parametrize("bad", list(BAD_DATA))
async def test_bad_data_affects_only_its_own_job(make_store: Any, bad: str) -> None:
    """Issue 8: "Bad data takes the whole manager down and cancels every healthy job with it: a job
    returning a cyclic or 900-deep value (RecursionError), an exception whose ``__str__`` raises, an
    error or progress message the store cannot encode (a lone surrogate ..., a NUL byte ...), a
    result of ``10**5000`` on the SQL stores". Only that job is affected (it ends FAILED, or its
    set_progress raises ValueError); the jobs running beside it succeed; the manager keeps working."""
    fn, expected_state, expected_result = BAD_DATA[bad]
    release = anyio.Event()

    async def healthy(ctx: Context) -> int:
        with anyio.fail_after(5):
            await release.wait()
        return int(ctx.params)

    async with JobManager(store=make_store()) as jobs:
        beside = [await jobs.submit(healthy, i) for i in range(3)]
        culprit = await jobs.submit(fn)
        with anyio.fail_after(5):
            info = await jobs.wait(culprit.id)
        release.set()
        with anyio.fail_after(5):
            others = [await jobs.wait(ref.id) for ref in beside]
        assert info is not None
        assert info.state is expected_state, f"{info.state.name}: {info.error_type}: {info.error}"
        if expected_state is State.FAILED:
            assert info.error
        else:
            assert info.result == expected_result
        assert [o.state if o else None for o in others] == [State.SUCCEEDED] * 3
        assert [o.result if o else None for o in others] == [0, 1, 2]
        after = await jobs.submit(ok)
        with anyio.fail_after(5):
            last = await jobs.wait(after.id)
        assert last is not None
        assert last.state is State.SUCCEEDED
        assert len(await jobs.list()) == 5


# -- set_progress from a worker thread ----------------------------------------------------------------------


@pytest.mark.parametrize("thread", ["returns_at_once", "keeps_running"])
async def test_set_progress_from_a_worker_thread_reaches_the_stream(thread: str) -> None:
    """Issue 8: "``ctx.set_progress`` called from a worker thread (``anyio.to_thread.run_sync``)
    silently loses live events on asyncio; on trio it fails the job and the events stream never
    delivers the end". The stream gets the progress event, live (``keeps_running``: the thread
    goes on until the test has seen it, 2 s at most), and the end; the job succeeds. (On asyncio,
    ``returns_at_once`` passed before the rebuild: the thread's return wakes the loop.)"""
    seen_progress = threading.Event()
    late: list[bool] = []

    def report(ctx: Context) -> None:
        ctx.set_progress(0.5, "half")
        if thread == "keeps_running":
            late.append(not seen_progress.wait(2))

    async def from_thread(ctx: Context) -> str:
        if thread == "returns_at_once":
            await anyio.to_thread.run_sync(ctx.set_progress, 0.5, "half")
        else:
            await anyio.to_thread.run_sync(report, ctx)
        return "done"

    async with JobManager() as jobs:
        job_id = "progress-from-a-thread"
        stream = jobs.events(job_id)
        await jobs.submit(from_thread, id=job_id)
        seen: list[tuple[State, float, str | None]] = []
        with anyio.fail_after(5):
            async for event in stream:
                seen.append((event.state, event.progress, event.message))
                if (event.state, event.progress, event.message) == (State.RUNNING, 0.5, "half"):
                    seen_progress.set()
                if event.state.is_done:
                    break
        stream.close()
        info = await jobs.get(job_id)
    assert info is not None
    assert info.state is State.SUCCEEDED, f"{info.error_type}: {info.error}"
    assert (State.RUNNING, 0.5, "half") in seen, seen
    assert seen[-1][0] is State.SUCCEEDED
    assert not any(late), "the progress event only arrived once the thread had returned"


# -- a cancel between two retry attempts ---------------------------------------------------------------------


@pytest.mark.parametrize("store_kind", STORES)
async def test_a_cancel_between_retry_attempts_ends_canceled(make_store: Any) -> None:
    """Issue 8: "After ``Executor.stop()`` between two retry attempts, ``start`` raises
    ``JobCanceledError`` while the job stays FAILED". A job canceled while its Executor waits 10 s
    before the second attempt ends CANCELED at once, after one attempt. (A guard: the manager of
    f2b408b already records CANCELED here, overriding the Executor's race.)"""
    scheduled = anyio.Event()

    def on_retry(event: HookEvent) -> None:
        if event.name == instrumentation.RETRY_SCHEDULED:
            scheduled.set()

    instrumentation.set_hooks([on_retry])
    runs: list[int] = []

    async def fails_first(ctx: Context) -> None:
        runs.append(1)
        raise RuntimeError("first attempt")

    async with JobManager(store=make_store()) as jobs:
        ref = await jobs.submit(fails_first, retry=anyjob.Retry(3, delay=10))
        with anyio.fail_after(5):
            await scheduled.wait()
        assert await jobs.cancel(ref.id) is True
        with anyio.fail_after(5):
            info = await jobs.wait(ref.id)
    assert info is not None
    assert info.state is State.CANCELED, f"{info.state.name}: {info.error_type}: {info.error}"
    assert runs == [1]
