"""Context: what a job's function receives, how it reports, and from which threads."""

from __future__ import annotations

import math
import threading
from decimal import Decimal
from fractions import Fraction
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

import anyjob
from anyjob import Context, Job, JobStateError, State

pytestmark = pytest.mark.anyio


# -- what the function sees ---------------------------------------------------------------


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


# -- progress and results ---------------------------------------------------------------


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
