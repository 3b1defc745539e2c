"""Executor: success, retries with backoff, timeouts."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import anyio
import anyio.lowlevel
import attrs
import pytest
import tenacity
from tests.executor.support import Flaky, never_returns

from anyjob import (
    Context,
    Executor,
    Job,
    Retry,
    State,
    instrumentation,
)
from anyjob.testing import capture_events, set_testing

pytestmark = pytest.mark.anyio


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
