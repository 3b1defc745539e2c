"""Executor: stop and cancellation, at every moment of a start."""

from __future__ import annotations

import random
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from tests.executor.support import Flaky, Hang

from anyjob import (
    Context,
    Executor,
    Job,
    JobCanceledError,
    JobStateError,
    Retry,
    State,
    instrumentation,
)

pytestmark = pytest.mark.anyio


# -- stop and cancellation --------------------------------------------------------------


async def test_stop_cancels_the_attempt_and_every_retry() -> None:
    fn = Hang()
    entered = fn.entered

    ex = Executor(Job(fn), retry=Retry(5, delay=0))
    errors: list[BaseException] = []

    async def start() -> None:
        try:
            await ex.start()
        except JobCanceledError as exc:
            errors.append(exc)

    assert await ex.stop() is False  # nothing running
    async with anyio.create_task_group() as tg:
        tg.start_soon(start)
        await entered.wait()
        assert ex.is_running
        assert await ex.stop() is True
        assert not ex.is_running  # wait=True: start has finished
    assert fn.calls == 1
    assert len(errors) == 1
    assert errors[0].job_id == ex.job.id  # type: ignore[attr-defined]
    assert ex.job.state is State.CANCELED
    assert ex.stats().failures == 0


async def test_stop_during_the_wait_between_attempts() -> None:
    fn = Flaky(10)
    ex = Executor(Job(fn), retry=Retry(5, delay=1000))
    outcome: list[BaseException] = []
    scheduled = anyio.Event()

    def on_event(event: instrumentation.HookEvent) -> None:
        if event.name == instrumentation.RETRY_SCHEDULED:
            scheduled.set()

    instrumentation.set_hooks([on_event])

    async def start() -> None:
        try:
            await ex.start()
        except JobCanceledError as exc:
            outcome.append(exc)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(start)
            await scheduled.wait()
            assert ex.job.state is State.RUNNING  # no temporary FAILED between attempts
            assert await ex.stop() is True
    assert fn.calls == 1
    assert len(outcome) == 1
    # Before: the job stayed FAILED, as if its last attempt had failed on its own.
    assert ex.job.state is State.CANCELED
    assert outcome[0].__cause__ is None  # the attempt before had failed on its own
    stats = ex.stats()
    assert (stats.attempts, stats.failures, stats.last_error) == (1, 0, "failure 1")


async def test_request_stop_exactly_as_an_attempt_fails_ends_canceled() -> None:
    # The retry is scheduled (the hook runs in the executor's task, synchronously,
    # right after the attempt failed): no checkpoint between the failure and the stop.
    fn = Flaky(10)
    ex = Executor(Job(fn), retry=Retry(5, delay=0))

    def on_event(event: instrumentation.HookEvent) -> None:
        if event.name == instrumentation.RETRY_SCHEDULED:
            assert ex.request_stop() is True

    instrumentation.set_hooks([on_event])
    with pytest.raises(JobCanceledError, match=r"stop\(\)"):
        await ex.start()
    assert fn.calls == 1
    assert ex.job.state is State.CANCELED
    assert ex.stats().failures == 0


async def test_stop_from_inside_the_failing_attempt_ends_canceled_with_its_error() -> None:
    ex: Executor[None]

    async def stops_then_fails(ctx: Context) -> None:
        ex.request_stop()
        msg = "failed while stopping"
        raise ConnectionError(msg)

    ex = Executor(Job(stops_then_fails), retry=Retry(5, delay=0))
    with pytest.raises(JobCanceledError) as info:
        await ex.start()
    assert ex.job.state is State.CANCELED
    assert isinstance(ex.job.error, ConnectionError)
    assert info.value.__cause__ is ex.job.error


async def test_stop_once_the_last_attempt_has_failed_changes_nothing() -> None:
    # A listener told of the end asks to stop: there is nothing left to stop.
    ex = Executor(Job(Flaky(10)), retry=Retry(2, delay=0))
    answers: list[bool] = []

    def listener(job: Job[Any]) -> None:
        if job.state is State.FAILED:
            answers.append(ex.request_stop())

    ex.job._listener = listener
    with pytest.raises(ConnectionError, match="failure 2"):
        await ex.start()
    assert answers == [False]
    assert ex.job.state is State.FAILED
    assert ex.stats().failures == 1


async def test_job_cancel_between_attempts_ends_canceled_without_retrying() -> None:
    # Before: job.cancel() returned False between attempts and the retries went on.
    fn = Flaky(10)
    ex = Executor(Job(fn), retry=Retry(5, delay=1000))
    answers: list[bool] = []

    def on_event(event: instrumentation.HookEvent) -> None:
        if event.name == instrumentation.RETRY_SCHEDULED:
            answers.append(ex.job.cancel())

    instrumentation.set_hooks([on_event])
    with anyio.fail_after(5), pytest.raises(JobCanceledError, match=r"job\.cancel\(\)"):
        await ex.start()
    assert answers == [True]
    assert fn.calls == 1
    assert ex.job.state is State.CANCELED


async def test_the_job_stays_running_from_the_first_attempt_to_the_last() -> None:
    fn = Flaky(2)
    seen: list[tuple[State, int, float]] = []

    async def reporting(ctx: Context) -> Any:
        ctx.set_progress(0.5)
        return await fn(ctx)

    ex = Executor(Job(reporting), retry=Retry(3, delay=0))
    ex.job._listener = lambda job: seen.append((job.state, ex.attempts, job.progress))
    assert await ex.start() == "ok"
    assert [state for state, *_ in seen if state is not State.RUNNING] == [State.SUCCEEDED]
    # Each further attempt is announced (progress starts afresh), then reports.
    assert seen == [
        (State.RUNNING, 0, 0.0),
        (State.RUNNING, 1, 0.5),
        (State.RUNNING, 2, 0.0),
        (State.RUNNING, 2, 0.5),
        (State.RUNNING, 3, 0.0),
        (State.RUNNING, 3, 0.5),
        (State.SUCCEEDED, 3, 0.5),
    ]
    assert ex.attempts == ex.stats().attempts == 3


async def test_contexts_of_earlier_attempts_go_stale() -> None:
    kept: list[Context] = []

    async def fn(ctx: Context) -> str:
        kept.append(ctx)
        if len(kept) == 1:
            msg = "first"
            raise ConnectionError(msg)
        with pytest.raises(JobStateError, match="has ended"):
            kept[0].set_progress(0.5)
        return "second"

    ex = Executor(Job(fn), retry=Retry(2, delay=0))
    assert await ex.start() == "second"


@pytest.mark.parametrize("stop_after", range(24))
async def test_stop_at_every_point_of_a_start_gives_a_consistent_outcome(stop_after: int) -> None:
    """A stop after each number of checkpoints: the outcome always agrees with the job's state.

    Before: a stop during a wait between attempts raised JobCanceledError with the job FAILED.
    """
    for timeout in (None, 10.0):
        fn = Flaky(3)
        ex = Executor(Job(fn), retry=Retry(5, delay=0), timeout=timeout)
        outcome: list[object] = []
        stopped: list[bool] = []

        async def start(ex: Executor[Any] = ex, outcome: list[object] = outcome) -> None:
            try:
                outcome.append(await ex.start())
            except Exception as exc:  # what it raised is the outcome
                outcome.append(exc)

        async def stop(ex: Executor[Any] = ex, stopped: list[bool] = stopped) -> None:
            for _ in range(stop_after):
                await anyio.lowlevel.checkpoint()
            stopped.append(await ex.stop())

        async with anyio.create_task_group() as tg:
            tg.start_soon(start)
            tg.start_soon(stop)
        state = ex.job.state
        if stopped == [True]:
            assert isinstance(outcome[0], JobCanceledError), (stop_after, outcome)
            assert state is State.CANCELED
        else:
            assert outcome == ["ok"]
            assert state is State.SUCCEEDED


async def test_job_cancel_during_start_raises_job_canceled_without_retrying() -> None:
    fn = Hang()
    entered = fn.entered

    ex = Executor(Job(fn), retry=Retry(5, delay=0))
    async with anyio.create_task_group() as tg:

        async def start() -> None:
            with pytest.raises(JobCanceledError, match=r"job\.cancel\(\)"):
                await ex.start()

        tg.start_soon(start)
        await entered.wait()
        assert ex.job.cancel()
    assert fn.calls == 1


async def test_outer_cancellation_is_never_retried_and_propagates() -> None:
    fn = Hang()
    entered = fn.entered

    ex = Executor(Job(fn), retry=Retry(5, delay=0, on=lambda exc: True))
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(ex.start)
            await entered.wait()
            scope.cancel()
    assert scope.cancelled_caught
    assert fn.calls == 1
    assert ex.job.state is State.CANCELED
    assert not ex.is_running


async def test_outer_cancellation_during_the_wait_propagates() -> None:
    fn = Flaky(10)
    ex = Executor(Job(fn), retry=Retry(5, delay=1000))
    with anyio.move_on_after(0.5) as scope:
        await ex.start()
    assert scope.cancelled_caught
    assert fn.calls == 1
    assert not ex.is_running


async def test_stop_at_random_points_stress() -> None:
    """A bounded stress loop (seeded): whatever the moment of the stop, outcome and state agree."""
    instrumentation.set_hooks([])
    rng = random.Random(20240806)  # noqa: S311 - a reproducible test schedule, not cryptography
    outcomes: dict[str, int] = {}
    for _ in range(300):
        fn = Flaky(rng.randrange(5))
        retry = Retry(rng.randrange(1, 5), delay=rng.choice([0.0, 0.001]))
        ex = Executor(Job(fn), retry=retry, timeout=rng.choice([None, 10.0]))
        stop_after = rng.randrange(30)
        outcome: list[object] = []
        stopped: list[bool] = []

        async def start(ex: Executor[Any] = ex, outcome: list[object] = outcome) -> None:
            try:
                outcome.append(await ex.start())
            except Exception as exc:  # what it raised is the outcome
                outcome.append(exc)

        async def stop(
            ex: Executor[Any] = ex, stopped: list[bool] = stopped, after: int = stop_after
        ) -> None:
            for _ in range(after):
                await anyio.lowlevel.checkpoint()
            stopped.append(ex.request_stop())

        async with anyio.create_task_group() as tg:
            tg.start_soon(start)
            tg.start_soon(stop)
        job = ex.job
        if stopped == [True]:
            assert isinstance(outcome[0], JobCanceledError)
            assert job.state is State.CANCELED
        elif isinstance(outcome[0], ConnectionError):
            assert job.state is State.FAILED
            assert job.error is outcome[0]
        else:
            assert outcome == ["ok"]
            assert job.state is State.SUCCEEDED
        assert not job.is_executing
        assert not ex.is_running
        outcomes[job.state.value] = outcomes.get(job.state.value, 0) + 1
    assert set(outcomes) == {"canceled", "failed", "succeeded"}, outcomes
