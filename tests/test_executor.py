from __future__ import annotations

import math
import random
from datetime import timedelta
from typing import Any

import anyio
import anyio.lowlevel
import attrs
import pytest
import tenacity

import anyjob
from anyjob import (
    AlreadySucceededError,
    Context,
    CooldownError,
    Executor,
    Job,
    JobCanceledError,
    JobStateError,
    Retry,
    State,
    instrumentation,
)
from anyjob.testing import capture_events, set_testing

pytestmark = pytest.mark.anyio


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param("trio-mockclock", id="trio-mockclock"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """asyncio in real time; trio with a MockClock that jumps over every sleep at once."""
    if request.param == "trio-mockclock":
        from trio.testing import MockClock

        return ("trio", {"clock": MockClock(autojump_threshold=0)})
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def mock_clock(anyio_backend: tuple[str, dict[str, object]]) -> bool:
    return "clock" in anyio_backend[1]


class Flaky:
    """Fails ``failures`` times (with ``error``), then returns ``value``; records attempt times."""

    def __init__(
        self, failures: int, error: type[BaseException] = ConnectionError, value: Any = "ok"
    ) -> None:
        self.failures = failures
        self.error = error
        self.value = value
        self.calls = 0
        self.times: list[float] = []

    async def __call__(self, ctx: Context) -> Any:
        self.calls += 1
        self.times.append(anyio.current_time())
        await anyio.lowlevel.checkpoint()
        if self.calls <= self.failures:
            msg = f"failure {self.calls}"
            raise self.error(msg)
        return self.value


async def never_returns(ctx: Context) -> None:
    await anyio.sleep_forever()


class Hang:
    """Never returns; counts its calls and says when it has started."""

    def __init__(self) -> None:
        self.entered = anyio.Event()
        self.calls = 0

    async def __call__(self, ctx: Context) -> None:
        self.calls += 1
        self.entered.set()
        await anyio.sleep_forever()


# -- success and retries ------------------------------------------------------------


async def test_success_returns_the_result() -> None:
    ex = Executor(Job(Flaky(0, value=7)), retry=Retry(3), timeout=10)
    assert await ex.start("p") == 7
    assert ex.job.params == "p"
    stats = ex.stats()
    assert (stats.attempts, stats.retries, stats.starts, stats.successes, stats.failures) == (1, 0, 1, 1, 0)
    assert stats.last_error is None
    assert stats.cooldown_remaining == 0.0
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        stats.attempts = 3  # type: ignore[misc]


async def test_retries_until_success_with_backoff(mock_clock: bool) -> None:
    fn = Flaky(3)
    ex = Executor(Job(fn), retry=Retry(5, delay=0.01, backoff=3.0))
    with capture_events() as events:
        assert await ex.start() == "ok"
    assert fn.calls == 4
    stats = ex.stats()
    assert (stats.attempts, stats.retries, stats.successes, stats.failures) == (4, 3, 1, 0)
    assert stats.last_error == "failure 3"
    waits = [b - a for a, b in zip(fn.times, fn.times[1:], strict=False)]
    expected = [0.01, 0.03, 0.09]
    if mock_clock:
        assert waits == pytest.approx(expected, abs=1e-6)
    else:
        assert all(w >= e * 0.9 for w, e in zip(waits, expected, strict=True)), waits
    scheduled = [e for e in events if e.name == instrumentation.RETRY_SCHEDULED]
    assert [e.attempt for e in scheduled] == [1, 2, 3]
    assert [e.wait for e in scheduled] == pytest.approx(expected)
    assert [str(e.error) for e in scheduled] == ["failure 1", "failure 2", "failure 3"]
    assert all(e.job_id == ex.job.id for e in scheduled)


async def test_max_delay_caps_and_jitter_adds(mock_clock: bool) -> None:
    fn = Flaky(4)
    ex = Executor(Job(fn), retry=Retry(5, delay=0.01, backoff=10, max_delay=0.05, jitter=0.02))
    await ex.start()
    waits = [b - a for a, b in zip(fn.times, fn.times[1:], strict=False)]
    bases = [0.01, 0.05, 0.05, 0.05]
    if mock_clock:
        for wait, base in zip(waits, bases, strict=True):
            assert base - 1e-9 <= wait <= base + 0.02 + 1e-9


def test_wait_formula() -> None:
    policy = Retry(6, delay=1.0, backoff=2.0, max_delay=5.0)
    assert [policy.wait_before(k + 1) for k in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    jittered = Retry(3, delay=1.0, jitter=0.5)
    for _ in range(100):
        assert 1.0 <= jittered.wait_before(2) <= 1.5
    huge = Retry(2000, delay=1.0, backoff=10.0)
    assert huge.wait_before(1500) == math.inf  # overflow is an endless wait, not a crash
    assert Retry(2000, delay=1.0, backoff=10.0, max_delay=3).wait_before(1500) == 3.0


async def test_exhausted_attempts_raise_the_last_error_itself() -> None:
    fn = Flaky(10)
    ex = Executor(Job(fn), retry=Retry(3, delay=0))
    with pytest.raises(ConnectionError, match="failure 3") as info:
        await ex.start()
    assert not isinstance(info.value, tenacity.RetryError)
    assert fn.calls == 3
    stats = ex.stats()
    assert (stats.attempts, stats.retries, stats.failures, stats.successes) == (3, 2, 1, 0)
    assert stats.last_error == "failure 3"
    assert ex.job.state is State.FAILED
    assert ex.job.error is info.value


async def test_int_retry_means_total_attempts() -> None:
    fn = Flaky(10)
    ex = Executor(Job(fn), retry=2)
    assert ex.retry == Retry(attempts=2)
    with set_testing(True), pytest.raises(ConnectionError):
        await ex.start()
    assert fn.calls == 2


async def test_no_retry_policy_means_one_try() -> None:
    fn = Flaky(1)
    ex = Executor(Job(fn))
    with pytest.raises(ConnectionError):
        await ex.start()
    assert fn.calls == 1
    assert ex.stats().retries == 0


@pytest.mark.parametrize(
    ("on", "retried"),
    [
        (ConnectionError, True),
        (ValueError, False),
        ((ValueError, OSError), True),
        ((ValueError, KeyError), False),
        (lambda exc: "failure" in str(exc), True),
        (lambda exc: False, False),
    ],
)
async def test_on_selects_what_is_retried(on: Any, retried: bool) -> None:
    fn = Flaky(1)
    ex = Executor(Job(fn), retry=Retry(3, delay=0, on=on))
    if retried:
        assert await ex.start() == "ok"
        assert fn.calls == 2
    else:
        with pytest.raises(ConnectionError):
            await ex.start()
        assert fn.calls == 1


async def test_base_exceptions_are_never_retried() -> None:
    fn = Flaky(5, error=KeyboardInterrupt)
    ex = Executor(Job(fn), retry=Retry(5, delay=0, on=lambda exc: True))
    with pytest.raises(KeyboardInterrupt):
        await ex.start()
    assert fn.calls == 1


# -- timeouts ------------------------------------------------------------------------


async def test_timeout_fails_the_attempt_with_timeout_error_and_is_retried() -> None:
    calls = 0

    async def slow_then_fast(ctx: Context) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await anyio.sleep(100)
        return "fast"

    ex = Executor(Job(slow_then_fast), retry=Retry(2, delay=0), timeout=0.05)
    assert await ex.start() == "fast"
    assert calls == 2
    assert ex.stats().last_error is not None
    assert "timed out" in ex.stats().last_error


async def test_timeout_on_the_last_attempt_raises_timeout_error() -> None:
    job = Job(never_returns)
    ex = Executor(job, retry=Retry(2, delay=0), timeout=timedelta(milliseconds=50))
    assert ex.timeout == 0.05
    with pytest.raises(TimeoutError):
        await ex.start()
    assert job.state is State.FAILED  # not CANCELED
    assert isinstance(job.error, TimeoutError)
    assert ex.stats().attempts == 2


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


# -- once, cooldown, state --------------------------------------------------------------


async def test_once_is_consumed_by_success_only() -> None:
    fn = Flaky(1)
    ex = Executor(Job(fn), once=True)
    with pytest.raises(ConnectionError):
        await ex.start()
    assert await ex.start() == "ok"  # the failure did not consume it
    with pytest.raises(AlreadySucceededError) as info:
        await ex.start()
    assert info.value.job_id == ex.job.id
    assert fn.calls == 2
    ex.reset()
    assert await ex.start() == "ok"
    assert ex.stats().starts == 1


async def test_cooldown_after_success_and_failure(mock_clock: bool) -> None:
    fn = Flaky(1)
    ex = Executor(Job(fn), cooldown=0.2)
    with pytest.raises(ConnectionError):
        await ex.start()
    with pytest.raises(CooldownError, match="cooldown") as info:
        await ex.start()
    assert 0 < info.value.remaining <= 0.2
    assert info.value.job_id == ex.job.id
    assert 0 < ex.stats().cooldown_remaining <= 0.2
    await anyio.sleep(0.25)
    assert ex.stats().cooldown_remaining == 0.0  # never negative
    assert await ex.start() == "ok"
    with pytest.raises(CooldownError):
        await ex.start()
    assert fn.calls == 2
    assert ex.stats().starts == 2  # refused starts are not counted
    ex.reset()
    assert ex.stats().cooldown_remaining == 0.0
    assert await ex.start() == "ok"


async def test_cooldown_counts_from_the_end_of_start(mock_clock: bool) -> None:
    async def slow(ctx: Context) -> str:
        await anyio.sleep(0.3)
        return "done"

    ex = Executor(Job(slow), cooldown=0.2)
    await ex.start()
    remaining = ex.stats().cooldown_remaining
    assert 0.1 < remaining <= 0.2  # not eaten up by the 0.3 s run
    if mock_clock:
        assert remaining == pytest.approx(0.2)


async def test_start_while_the_job_executes_raises_job_state_error() -> None:
    entered = anyio.Event()

    async def fn(ctx: Context) -> None:
        entered.set()
        await anyio.sleep_forever()

    async def start_until_stopped() -> None:
        with pytest.raises(JobCanceledError):
            await ex.start()

    job = Job(fn)
    ex = Executor(job)
    async with anyio.create_task_group() as tg:
        tg.start_soon(job.run)
        await entered.wait()
        with pytest.raises(JobStateError):
            await ex.start()
        job.cancel()
    entered = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(start_until_stopped)
        await entered.wait()
        with pytest.raises(JobStateError):
            await ex.start()
        with pytest.raises(JobStateError):
            ex.reset()
        await ex.stop()


async def test_stats_are_per_start_plus_totals() -> None:
    fn = Flaky(2)
    ex = Executor(Job(fn), retry=Retry(3, delay=0))
    await ex.start()
    assert ex.stats().attempts == 3
    await ex.start()  # succeeds at once now
    stats = ex.stats()
    assert (stats.attempts, stats.retries, stats.starts, stats.successes) == (1, 0, 2, 2)


async def test_concurrent_executors_each_do_their_own_attempts() -> None:
    functions = [Flaky(100) for _ in range(12)]
    executors = [
        Executor(Job(fn), retry=Retry(n % 5 + 1, delay=0.001, jitter=0.002)) for n, fn in enumerate(functions)
    ]

    async def start(ex: Executor[Any]) -> None:
        with pytest.raises(ConnectionError):
            await ex.start()

    async with anyio.create_task_group() as tg:
        for ex in executors:
            tg.start_soon(start, ex)
    for n, (fn, ex) in enumerate(zip(functions, executors, strict=True)):
        assert fn.calls == n % 5 + 1
        assert ex.stats().attempts == n % 5 + 1


# -- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attempts": 0},
        {"attempts": -1},
        {"delay": -1},
        {"delay": math.nan},
        {"delay": math.inf},
        {"backoff": 0.5},
        {"backoff": math.nan},
        {"backoff": math.inf},
        {"max_delay": -0.1},
        {"max_delay": math.nan},
        {"jitter": -1},
        {"jitter": math.nan},
        {"delay": timedelta(seconds=-1)},
        {"on": KeyboardInterrupt},
    ],
)
def test_invalid_retry_values_raise_value_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Retry(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attempts": 1.5},
        {"attempts": True},
        {"delay": "1"},
        {"backoff": "2"},
        {"on": 42},
        {"on": (ValueError, 3)},
        {"on": ()},
    ],
)
def test_wrong_retry_types_raise_type_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        Retry(**kwargs)


def test_retry_accepts_timedelta() -> None:
    policy = Retry(3, timedelta(milliseconds=500), max_delay=timedelta(seconds=2), jitter=timedelta(0))
    assert (policy.delay, policy.max_delay, policy.jitter) == (0.5, 2.0, 0.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout": -1},
        {"timeout": math.nan},
        {"cooldown": -0.5},
        {"cooldown": math.nan},
        {"cooldown": timedelta(seconds=-1)},
    ],
)
def test_invalid_executor_values_raise_value_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Executor(Job(never_returns), **kwargs)


def test_wrong_executor_types_raise_type_error() -> None:
    with pytest.raises(TypeError):
        Executor(never_returns)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Executor(Job(never_returns), retry="3")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Executor(Job(never_returns), once=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Executor(Job(never_returns), timeout="1")  # type: ignore[arg-type]


# -- testing mode ---------------------------------------------------------------------------


async def test_set_testing_removes_waits_and_cooldowns_and_restores() -> None:
    fn = Flaky(2)
    ex = Executor(Job(fn), retry=Retry(3, delay=1000), cooldown=1000)
    with anyio.fail_after(5), set_testing(True) as mode:
        assert mode.enabled
        assert await ex.start() == "ok"
        assert await ex.start() == "ok"  # no cooldown either
    assert fn.calls == 4
    assert not anyjob.testing.get_testing().enabled


async def test_set_testing_caps_attempts() -> None:
    fn = Flaky(10)
    ex = Executor(Job(fn), retry=Retry(5, delay=1000))
    with set_testing(True, attempts=2), pytest.raises(ConnectionError):
        await ex.start()
    assert fn.calls == 2
    with set_testing(True, attempts=1), pytest.raises(ConnectionError):
        await ex.start()
    assert fn.calls == 3


def test_set_testing_validates_and_works_without_with() -> None:
    with pytest.raises(ValueError):
        set_testing(True, attempts=0)
    with pytest.raises(TypeError):
        set_testing(True, attempts=1.5)  # type: ignore[arg-type]
    set_testing(True, attempts=3)
    assert anyjob.testing.get_testing() == anyjob.testing.TestingMode(enabled=True, attempts=3)
    set_testing(False)
    assert anyjob.testing.get_testing() == anyjob.testing.TestingMode()


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
