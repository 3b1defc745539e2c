"""Executor: once, cooldown, state, stats, validation and the testing mode."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from tests.executor.support import Flaky, never_returns

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
)
from anyjob.testing import set_testing

pytestmark = pytest.mark.anyio


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
