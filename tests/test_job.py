from __future__ import annotations

import gc
import math
import threading
import weakref
from datetime import UTC, timedelta
from decimal import Decimal
from fractions import Fraction
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


async def test_context_exposes_the_job() -> None:
    seen: dict[str, Any] = {}

    async def fn(ctx: Context) -> None:
        seen.update(id=ctx.id, name=ctx.name, labels=ctx.labels, params=ctx.params)
        ctx.logger.debug("anyjob.test_event")

    job = Job(fn, name="n", labels={"k": "v"})
    await job.run({"x": 1})
    assert seen == {"id": job.id, "name": "n", "labels": {"k": "v"}, "params": {"x": 1}}


async def test_context_logger_is_bound_with_id_and_name() -> None:
    from structlog.testing import capture_logs

    async def fn(ctx: Context) -> None:
        ctx.logger.info("my.event", extra=1)

    job = Job(fn, name="logged")
    anyjob.instrumentation.set_hooks([])
    with capture_logs() as logs:
        await job.run()
    assert logs == [
        {"event": "my.event", "extra": 1, "job_id": job.id, "job_name": "logged", "log_level": "info"}
    ]


async def test_set_result_visible_while_running_and_replaced_by_return() -> None:
    gate = anyio.Event()
    seen: list[Any] = []

    async def fn(ctx: Context) -> str | None:
        ctx.set_result("partial")
        await gate.wait()
        return ctx.params

    job = Job(fn)
    async with anyio.create_task_group() as tg:
        await tg.start(job.run, "final")
        await anyio.lowlevel.checkpoint()
        seen.append(job.result)
        gate.set()
    assert seen == ["partial"]
    assert job.result == "final"

    # A None return keeps what was set.
    job2 = Job(fn)
    gate = anyio.Event()
    gate.set()
    await job2.run(None)
    assert job2.result == "partial"


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


@pytest.mark.parametrize(
    "bad",
    [math.nan, math.inf, -math.inf, -0.01, 1.0001, 2, -1],
)
async def test_progress_rejects_out_of_range(bad: float) -> None:
    outcome: list[BaseException] = []

    async def fn(ctx: Context) -> str:
        ctx.set_progress(0.25, "quarter")
        try:
            ctx.set_progress(bad, "bad")
        except ValueError as exc:
            outcome.append(exc)
        return "carried on"

    job = Job(fn)
    await job.run()
    assert len(outcome) == 1
    assert job.state is State.SUCCEEDED
    assert job.result == "carried on"
    assert job.progress == 0.25
    assert job.message == "quarter"


@pytest.mark.parametrize("bad", ["0.5", None, True, [0.5], 1j])
async def test_progress_rejects_non_numbers(bad: object) -> None:
    outcome: list[BaseException] = []

    async def fn(ctx: Context) -> None:
        try:
            ctx.set_progress(bad)  # type: ignore[arg-type]
        except TypeError as exc:
            outcome.append(exc)

    job = Job(fn)
    await job.run()
    assert len(outcome) == 1
    assert job.state is State.SUCCEEDED
    assert job.progress == 0.0


async def test_progress_accepts_real_numbers_and_keeps_message_when_none() -> None:
    values: list[tuple[float, str | None]] = []

    async def fn(ctx: Context) -> None:
        for value in (0, 1, 0.5, Fraction(1, 4), Decimal("0.75")):
            ctx.set_progress(value, "step")  # type: ignore[arg-type]
            values.append((ctx._job.progress, ctx._job.message))
        ctx.set_progress(0.9)
        values.append((ctx._job.progress, ctx._job.message))
        with pytest.raises(TypeError, match="message"):
            ctx.set_progress(0.95, 3)  # type: ignore[arg-type]

    await Job(fn).run()
    assert values == [
        (0.0, "step"), (1.0, "step"), (0.5, "step"), (0.25, "step"), (0.75, "step"), (0.9, "step"),
    ]  # fmt: skip


async def test_context_refuses_reports_after_its_run_ended() -> None:
    kept: list[Context] = []

    async def fn(ctx: Context) -> None:
        kept.append(ctx)

    job = Job(fn)
    await job.run()
    with pytest.raises(JobStateError, match="has ended"):
        kept[0].set_progress(0.5)
    with pytest.raises(JobStateError):
        kept[0].set_result(1)
    assert job.progress == 0.0
    assert job.result is None


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


# -- reports from worker threads ------------------------------------------------------------


async def test_reports_from_a_worker_thread_reach_the_job_in_the_loop_thread() -> None:
    # Before: on asyncio the listener ran in the worker thread (live events lost),
    # on trio it failed the job.
    loop_thread = threading.get_ident()
    seen: list[tuple[int, State, float, str | None]] = []

    def listener(job: Job[Any]) -> None:
        seen.append((threading.get_ident(), job.state, job.progress, job.message))

    async def fn(ctx: Context) -> None:
        await anyio.to_thread.run_sync(lambda: ctx.set_progress(0.5, "halfway"))
        # Delivered before the thread's call returned.
        assert (job.progress, job.message) == (0.5, "halfway")
        await anyio.to_thread.run_sync(ctx.set_result, "from a thread")
        assert job.result == "from a thread"

    job = Job(fn)
    job._listener = listener
    await job.run()
    assert job.state is State.SUCCEEDED, job.error
    assert (job.progress, job.message, job.result) == (0.5, "halfway", "from a thread")
    assert (loop_thread, State.RUNNING, 0.5, "halfway") in seen
    assert {thread for thread, *_ in seen} == {loop_thread}


async def test_reports_from_other_threads_raise_a_clear_error_and_leave_the_job_alone() -> None:
    errors: list[BaseException] = []

    def in_a_plain_thread(ctx: Context) -> None:
        def report() -> None:
            try:
                ctx.set_progress(0.5)
            except BaseException as exc:  # handed to the test
                errors.append(exc)

        thread = threading.Thread(target=report)
        thread.start()
        thread.join()

    async def fn(ctx: Context) -> str:
        await anyio.to_thread.run_sync(in_a_plain_thread, ctx)
        return "done"

    job = Job(fn)
    await job.run()
    assert job.state is State.SUCCEEDED
    assert job.progress == 0.0
    assert len(errors) == 1
    assert isinstance(errors[0], RuntimeError)
    assert "anyio.to_thread.run_sync" in str(errors[0])


async def test_reports_from_a_worker_thread_after_the_run_ended_raise_job_state_error() -> None:
    kept: list[Context] = []

    async def fn(ctx: Context) -> None:
        kept.append(ctx)

    job = Job(fn)
    await job.run()
    with pytest.raises(JobStateError, match="has ended"):
        await anyio.to_thread.run_sync(kept[0].set_progress, 0.5)
    with pytest.raises(JobStateError, match="has ended"):
        await anyio.to_thread.run_sync(kept[0].set_result, 1)
    with pytest.raises(ValueError, match="progress"):  # checked in the thread, before anything
        await anyio.to_thread.run_sync(kept[0].set_progress, 10**400)
    assert (job.progress, job.result) == (0.0, None)


# -- error text -------------------------------------------------------------------------


class UnprintableError(Exception):
    def __str__(self) -> str:
        msg = "no text for you"
        raise RuntimeError(msg)


def test_error_text_never_raises_and_is_storable() -> None:
    text = error_text(UnprintableError())
    assert "UnprintableError" in text
    assert error_text(ValueError()) == "ValueError"
    odd = error_text(ValueError("file \udcff.txt\x00end"))
    assert "\x00" not in odd
    odd.encode("utf-8")  # no lone surrogate left
    assert "file" in odd
    assert "end" in odd
    long = error_text(ValueError("x" * 100_000))
    assert len(long) <= 4096
    assert long.startswith("xxx")


async def test_a_job_whose_error_cannot_print_itself_still_reports() -> None:
    async def fn(ctx: Context) -> None:
        raise UnprintableError

    job = Job(fn)
    await job.run()
    assert job.state is State.FAILED
    assert "UnprintableError" in (job.stats().error or "")


def _raise_deep(depth: int, message: str) -> None:
    if depth:
        _raise_deep(depth - 1, message)
    raise ValueError(message)


def test_error_traceback_is_bounded_sanitized_and_never_raises() -> None:
    try:
        _raise_deep(3, "bad \udcff byte\x00")
    except ValueError as exc:
        text = error_traceback(exc)
    assert text.startswith("Traceback (most recent call last):")
    assert "_raise_deep" in text
    assert "ValueError: bad" in text
    assert "\x00" not in text
    text.encode("utf-8")
    try:
        _raise_deep(2, "y" * 200_000)
    except ValueError as exc:
        big = error_traceback(exc)
    assert len(big) <= MAX_TRACEBACK_LENGTH
    assert big.startswith("Traceback")
    assert "characters left out" in big
    assert big.rstrip().endswith("y")  # the end, where the error is, is kept
    assert "UnprintableError" in error_traceback(UnprintableError())
    assert "ValueError" in error_traceback(ValueError("never raised"))
