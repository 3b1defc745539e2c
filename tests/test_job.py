from __future__ import annotations

import gc
import weakref
from datetime import UTC, timedelta
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

import anyjob
from anyjob import Context, Job, JobStateError, State
from anyjob._job import MAX_TRACEBACK_LENGTH, error_text, error_traceback

pytestmark = pytest.mark.anyio


async def returns_42(ctx: Context) -> int:
    return 42


async def fails(ctx: Context) -> None:
    msg = "boom"
    raise ValueError(msg)


class Gate:
    """A job function that blocks until released; records what it saw."""

    def __init__(self) -> None:
        self.entered = anyio.Event()
        self.release = anyio.Event()
        self.calls = 0
        self.cancelled = False

    async def __call__(self, ctx: Context) -> str:
        self.calls += 1
        self.entered.set()
        try:
            await self.release.wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled = True
            raise
        return "released"


# -- construction -------------------------------------------------------------


async def test_defaults() -> None:
    job = Job(returns_42)
    assert job.state is State.CREATED
    assert job.name == "returns_42"
    assert job.labels == {}
    assert job.progress == 0.0
    assert job.message is None
    assert job.params is None
    assert job.result is None
    assert job.error is None
    assert job.created_at.tzinfo is UTC
    assert job.started_at is None
    assert job.ended_at is None
    assert job.execution_time == timedelta(0)
    assert not job.is_done
    assert not job.is_executing
    assert job.is_state(State.CREATED)
    assert not job.is_state(State.RUNNING, State.FAILED)


def test_name_defaults_to_qualname() -> None:
    class Holder:
        async def method(self, ctx: Context) -> None:
            return None

    assert Job(Holder().method).name.endswith("Holder.method")
    assert Job(returns_42, name="custom").name == "custom"
    assert Job(returns_42, id="my-id").id == "my-id"


def test_bad_construction() -> None:
    with pytest.raises(TypeError, match=r"Job\(\) needs an async def function"):
        Job(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="id must be a str"):
        Job(returns_42, id=12)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="id must not be empty"):
        Job(returns_42, id="")
    with pytest.raises(TypeError, match="name must be a str"):
        Job(returns_42, name=b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="labels must map str to str"):
        Job(returns_42, labels={"a": 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="labels must be a mapping"):
        Job(returns_42, labels=[("a", "b")])  # type: ignore[arg-type]


def test_labels_are_copied_and_read_only() -> None:
    labels = {"project": "alpha"}
    job = Job(returns_42, labels=labels)
    labels["project"] = "beta"
    labels["extra"] = "x"
    assert dict(job.labels) == {"project": "alpha"}
    with pytest.raises(TypeError):
        job.labels["project"] = "gamma"  # type: ignore[index]


# -- running ------------------------------------------------------------------


async def test_success_records_result_and_times() -> None:
    job = Job(returns_42)
    await job.run("p")
    assert job.state is State.SUCCEEDED
    assert job.result == 42
    assert job.params == "p"
    assert job.error is None
    assert job.is_done
    assert job.started_at is not None
    assert job.ended_at is not None
    assert job.created_at <= job.started_at <= job.ended_at
    assert job.execution_time >= timedelta(0)


async def test_failure_is_recorded_not_raised() -> None:
    job = Job(fails)
    await job.run()
    assert job.state is State.FAILED
    assert isinstance(job.error, ValueError)
    assert str(job.error) == "boom"
    assert job.stats().error == "boom"


async def test_wrap_adapts_a_function_without_context() -> None:
    async def fetch() -> str:
        return "data"

    job = Job(anyjob.wrap(fetch))
    assert job.name.endswith("fetch")
    await job.run()
    assert job.result == "data"
    with pytest.raises(TypeError):
        anyjob.wrap("nope")  # type: ignore[arg-type]


def test_a_sync_function_is_refused_when_the_job_is_made() -> None:
    def sync(ctx: Context) -> int:
        return 1

    with pytest.raises(TypeError, match="must be an async def function taking a Context"):
        Job(sync)  # type: ignore[arg-type]


# -- the Go original's defects --------------------------------------------------


async def test_two_runs_in_the_same_tick_only_one_executes() -> None:
    gate = Gate()
    job = Job(gate)
    errors: list[BaseException] = []

    async def run() -> None:
        try:
            await job.run()
        except JobStateError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        # Both tasks start in the same tick (trio even shuffles their order).
        tg.start_soon(run)
        tg.start_soon(run)
        await gate.entered.wait()
        await anyio.lowlevel.checkpoint()
        gate.release.set()
    assert gate.calls == 1
    assert len(errors) == 1
    assert errors[0].job_id == job.id  # type: ignore[attr-defined]
    assert "already running" in str(errors[0])
    assert job.state is State.SUCCEEDED


async def test_running_before_first_yield() -> None:
    gate = Gate()
    job = Job(gate)
    coro = job.run()
    # Nothing ran yet: the coroutine has not started.
    assert job.state is State.CREATED
    async with anyio.create_task_group() as tg:
        await tg.start(job.run)  # the state is RUNNING once start() returns
        assert job.state is State.RUNNING
        assert job.is_executing
        with pytest.raises(JobStateError):
            await coro
        gate.release.set()
    assert job.state is State.SUCCEEDED


async def test_cancel_is_reported_canceled_never_succeeded() -> None:
    gate = Gate()
    job = Job(gate)
    async with anyio.create_task_group() as tg:
        await tg.start(job.run)
        await gate.entered.wait()
        assert job.cancel() is True
        assert job.state is State.CANCELING
        assert job.cancel() is False  # already canceling
        await job.wait()
    assert job.state is State.CANCELED
    assert gate.cancelled
    assert job.error is None
    assert job.result is None


async def test_cancel_before_the_function_first_yields_is_not_lost() -> None:
    async def fn(ctx: Context) -> str:
        await anyio.sleep(10)
        return "too late"

    job = Job(fn)
    async with anyio.create_task_group() as tg:
        await tg.start(job.run)
        assert job.cancel()  # the function has not run a single line yet
    assert job.state is State.CANCELED


async def test_canceling_always_ends_canceled_whatever_the_function_does() -> None:
    async def swallow_and_return(ctx: Context) -> str:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            return "swallowed"
        return "unreachable"

    async def swallow_and_raise(ctx: Context) -> None:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            msg = "cleanup failed"
            raise RuntimeError(msg) from None

    for fn in (swallow_and_return, swallow_and_raise):
        job = Job(fn)
        async with anyio.create_task_group() as tg:
            await tg.start(job.run)
            await anyio.lowlevel.checkpoint()
            assert job.cancel()
        assert job.state is State.CANCELED, fn.__name__
    assert isinstance(job.error, RuntimeError)  # recorded, never lost


async def test_cancel_when_not_running_returns_false() -> None:
    job = Job(returns_42)
    assert job.cancel() is False
    await job.run()
    assert job.cancel() is False
    assert job.state is State.SUCCEEDED


async def test_rerun_resets_the_previous_run_while_running() -> None:
    calls = 0
    gate = anyio.Event()
    seen: dict[str, Any] = {}

    async def fn(ctx: Context) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            ctx.set_progress(0.7, "first")
            msg = "first run failed"
            raise ValueError(msg)
        await gate.wait()
        return "second"

    job = Job(fn)
    await job.run("a")
    assert job.state is State.FAILED
    first_end = job.ended_at
    assert first_end is not None
    async with anyio.create_task_group() as tg:
        await tg.start(job.run, "b")
        await anyio.lowlevel.checkpoint()
        seen.update(
            state=job.state,
            error=job.error,
            result=job.result,
            progress=job.progress,
            message=job.message,
            ended_at=job.ended_at,
            params=job.params,
        )
        assert job.started_at is not None
        assert job.started_at >= first_end
        gate.set()
    assert seen == {
        "state": State.RUNNING,
        "error": None,
        "result": None,
        "progress": 0.0,
        "message": None,
        "ended_at": None,
        "params": "b",
    }
    assert job.result == "second"
    assert job.error is None


async def test_outer_cancellation_ends_canceled_and_propagates() -> None:
    gate = Gate()
    job = Job(gate)
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            await tg.start(job.run)
            await gate.entered.wait()
            scope.cancel()
    assert scope.cancelled_caught  # the cancellation reached the caller's scope
    assert job.state is State.CANCELED
    assert gate.cancelled


async def test_outer_cancellation_propagates_from_run_itself() -> None:
    job = Job(Gate())
    propagated = False
    with anyio.move_on_after(0.05):
        try:
            await job.run()
        except anyio.get_cancelled_exc_class():
            propagated = True
            raise
    assert propagated
    assert job.state is State.CANCELED


async def test_keyboard_interrupt_is_recorded_and_reraised() -> None:
    async def interrupted(ctx: Context) -> None:
        raise KeyboardInterrupt

    job = Job(interrupted)
    with pytest.raises(KeyboardInterrupt):
        await job.run()
    assert job.state is State.FAILED
    assert isinstance(job.error, KeyboardInterrupt)
    assert not job.is_executing


async def test_finished_job_keeps_no_frame_alive() -> None:
    class Marker:
        pass

    refs: list[weakref.ref[Marker]] = []

    async def fn(ctx: Context) -> str:
        local = Marker()
        refs.append(weakref.ref(local))
        await anyio.lowlevel.checkpoint()
        return "done"

    job = Job(fn)
    await job.run()
    gc.collect()
    assert refs[0]() is None
    assert job.result == "done"
    # Only fn, result and error are referenced: no coroutine, context or scope.
    assert job._scope is None
    referents = gc.get_referents(job)
    assert not any(type(r).__name__ in {"coroutine", "frame", "Context"} for r in referents)


async def test_wait_returns_once_not_executing() -> None:
    job = Job(returns_42)
    with anyio.fail_after(5):
        await job.wait()  # never started: at once
    gate = Gate()
    job = Job(gate)
    finished: list[State] = []

    async def waiter() -> None:
        await job.wait()
        finished.append(job.state)

    async with anyio.create_task_group() as tg:
        await tg.start(job.run)
        tg.start_soon(waiter)
        tg.start_soon(waiter)
        await gate.entered.wait()
        assert finished == []
        gate.release.set()
    assert finished == [State.SUCCEEDED, State.SUCCEEDED]


async def test_execution_time_grows_while_running_and_freezes_after() -> None:
    gate = Gate()
    job = Job(gate)
    async with anyio.create_task_group() as tg:
        await tg.start(job.run)
        first = job.execution_time
        await anyio.sleep(0.02)
        assert job.execution_time > first
        gate.release.set()
    frozen = job.execution_time
    await anyio.sleep(0.01)
    assert job.execution_time == frozen
    assert frozen >= timedelta(seconds=0.015)


async def test_stats_snapshot() -> None:
    job = Job(fails, labels={"a": "b"})
    await job.run()
    stats = job.stats()
    assert stats.id == job.id
    assert stats.name == "fails"
    assert stats.state is State.FAILED
    assert stats.labels == {"a": "b"}
    assert stats.error == "boom"
    assert stats.created_at == job.created_at
    assert stats.started_at == job.started_at
    assert stats.ended_at == job.ended_at
    assert stats.execution_time == job.execution_time
    with pytest.raises(AttributeError):
        stats.state = State.RUNNING  # type: ignore[misc]


async def test_error_without_message_uses_type_name() -> None:
    async def fn(ctx: Context) -> None:
        raise TimeoutError

    job = Job(fn)
    await job.run()
    assert job.stats().error == "TimeoutError"


async def test_jobs_compare_by_identity() -> None:
    a = Job(returns_42, id="same")
    b = Job(returns_42, id="same")
    assert a != b
    assert len({a, b}) == 2
    assert "returns_42" in repr(a)


async def test_the_names_other_modules_import_from_here_are_the_ones_they_moved_to() -> None:
    from anyjob import _backend, _context, _error_text, _functions, _jobstats
    from anyjob._job import (  # what the manager and anyjob import
        Context,
        Job,
        JobStats,
        Reporter,
        _current_async_library,
        new_cancel_scope,
        wrap,
    )

    assert anyjob.Context is Context is _context.Context
    assert anyjob.JobStats is JobStats is _jobstats.JobStats
    assert anyjob.wrap is wrap is _functions.wrap
    assert _current_async_library is _backend.current_async_library
    assert new_cancel_scope is _backend.new_cancel_scope
    assert anyjob.Job is Job
    assert Reporter is _context.Reporter
    assert (error_text, error_traceback) == (_error_text.error_text, _error_text.error_traceback)
    assert MAX_TRACEBACK_LENGTH == _error_text.MAX_TRACEBACK_LENGTH
    assert _current_async_library() in {"asyncio", "trio"}
    assert isinstance(new_cancel_scope(), anyio.CancelScope)
