"""Executor: retry, per-attempt timeout, cooldown and once-only around one Job."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, Generic, TypeVar, cast, final

import anyio
import anyio.lowlevel
import attrs
import tenacity

from anyjob._exceptions import (
    AlreadySucceededError,
    CooldownError,
    JobCanceledError,
    JobStateError,
)
from anyjob._job import Job, error_text
from anyjob._retry import Retry, as_retry
from anyjob._state import State
from anyjob._time import to_seconds
from anyjob.instrumentation import _hooks

__all__ = ["Executor", "ExecutorStats", "TestingMode", "testing_mode"]

R = TypeVar("R")


@final
@attrs.frozen
class TestingMode:
    """The process-wide testing switch (see :func:`anyjob.testing.set_testing`).

    Attributes:
        enabled: When true, executors never wait between attempts and ignore cooldowns.
        attempts: When set, caps the number of tries of every retry policy.
    """

    __test__ = False  # not a pytest test class

    enabled: bool = False
    attempts: int | None = None


class _TestingHolder:
    mode = TestingMode()


def testing_mode() -> TestingMode:
    """The current testing mode."""
    return _TestingHolder.mode


def set_testing_mode(mode: TestingMode) -> TestingMode:
    """Replace the testing mode; returns the previous one."""
    previous = _TestingHolder.mode
    _TestingHolder.mode = mode
    return previous


@final
@attrs.frozen
class ExecutorStats:
    """A snapshot of an executor's counters.

    Attributes:
        attempts: Tries made by the latest start (0 before the first).
        retries: ``attempts - 1``, never negative.
        cooldown_remaining: Seconds until the executor may start again (>= 0).
        starts: Starts that ran the job (refused starts are not counted).
        successes: Starts that returned a result.
        failures: Starts that ended with the job's error (cancellations are not failures).
        last_error: The message of the latest failed attempt's error, or ``None``.
    """

    attempts: int
    retries: int
    cooldown_remaining: float
    starts: int
    successes: int
    failures: int
    last_error: str | None


def _optional_seconds(value: float | timedelta | None, name: str) -> float | None:
    return None if value is None else to_seconds(value, name, allow_inf=True)


@final
@attrs.define(eq=False, init=False)
class Executor(Generic[R]):
    """Policies around one :class:`~anyjob.Job`: retry, per-attempt timeout, cooldown, once-only.

    Args:
        job: The job to drive. The executor runs it; the job does not know.
        retry: A :class:`~anyjob.Retry`, an int ``n`` (``Retry(attempts=n)``), or
            ``None`` for a single try.
        timeout: Seconds (or ``timedelta``) each attempt may take; a timed-out
            attempt fails with ``TimeoutError`` (and may be retried).
        cooldown: Seconds after a start that ran the job (success or failure)
            before the next start is allowed. Measured on the event loop's clock.
        once: After one successful start, further starts raise
            :class:`~anyjob.AlreadySucceededError` until :meth:`reset`. A failed
            start does not consume it.

    Raises:
        ValueError: A negative or NaN duration (invalid :class:`Retry` values are
            refused when the ``Retry`` is built).
        TypeError: An argument of the wrong type.
    """

    _job: Job[R]
    _retry: Retry | None
    _timeout: float | None
    _cooldown: float | None
    _once: bool
    # run state
    _running: bool
    _stop_requested: bool
    _finished: anyio.Event | None
    _succeeded_once: bool
    _cooldown_until: float | None
    _cooldown_until_mono: float | None
    # counters
    _attempts: int
    _starts: int
    _successes: int
    _failures: int
    _last_error: str | None

    def __init__(
        self,
        job: Job[R],
        *,
        retry: Retry | int | None = None,
        timeout: float | timedelta | None = None,
        cooldown: float | timedelta | None = None,
        once: bool = False,
    ) -> None:
        if not isinstance(job, Job):
            msg = f"Executor needs an anyjob.Job, not {type(job).__name__}"
            raise TypeError(msg)
        if not isinstance(once, bool):
            msg = f"once must be a bool, not {type(once).__name__}"
            raise TypeError(msg)
        self._job = job
        self._retry = as_retry(retry)
        self._timeout = _optional_seconds(timeout, "timeout")
        self._cooldown = _optional_seconds(cooldown, "cooldown")
        self._once = once
        self._running = False
        self._stop_requested = False
        self._finished = None
        self._succeeded_once = False
        self._cooldown_until = None
        self._cooldown_until_mono = None
        self._attempts = 0
        self._starts = 0
        self._successes = 0
        self._failures = 0
        self._last_error = None

    def __repr__(self) -> str:
        return f"<Executor job={self._job!r} running={self._running}>"

    @property
    def job(self) -> Job[R]:
        """The job this executor drives."""
        return self._job

    @property
    def retry(self) -> Retry | None:
        """The retry policy, or ``None`` for a single try."""
        return self._retry

    @property
    def timeout(self) -> float | None:
        """Seconds each attempt may take, or ``None``."""
        return self._timeout

    @property
    def cooldown(self) -> float | None:
        """Seconds between the end of a start and the next allowed start, or ``None``."""
        return self._cooldown

    @property
    def once(self) -> bool:
        """Whether only one successful start is allowed."""
        return self._once

    @property
    def attempts(self) -> int:
        """Tries made by the latest start so far (0 before the first); the same as ``stats().attempts``.

        The job stays ``RUNNING`` from a start's first attempt to its last; the job's
        listener is called when each further attempt begins, and this count says which one it is.
        """
        return self._attempts

    @property
    def is_running(self) -> bool:
        """True while a :meth:`start` is in progress (attempting or waiting to retry)."""
        return self._running

    # -- cooldown ---------------------------------------------------------------

    def _cooldown_remaining(self) -> float:
        if self._cooldown_until is None:
            return 0.0
        try:
            remaining = self._cooldown_until - anyio.current_time()
        except Exception:  # noqa: BLE001 - no event loop here: fall back to the monotonic clock
            assert self._cooldown_until_mono is not None  # noqa: S101 - set together
            remaining = self._cooldown_until_mono - time.monotonic()
        return max(0.0, remaining)

    def _begin_cooldown(self) -> None:
        cooldown = self._cooldown
        if cooldown is None or testing_mode().enabled:
            return
        self._cooldown_until = anyio.current_time() + cooldown
        self._cooldown_until_mono = time.monotonic() + cooldown

    # -- control ----------------------------------------------------------------

    async def start(self, params: Any = None) -> R:
        """Run the job under the policies and return its result.

        Args:
            params: Passed to every attempt as ``ctx.params``.

        Returns:
            The job's result.

        Raises:
            AlreadySucceededError: ``once=True`` and a previous start succeeded.
            JobStateError: The job is executing (here or elsewhere).
            CooldownError: The cooldown has not ended (``.remaining`` seconds left).
            JobCanceledError: The job was canceled by :meth:`stop` or ``job.cancel()``;
                no further attempts are made.
            Exception: Otherwise the last attempt's own exception (``TimeoutError``
                for a timed-out attempt).

        Cancellation of the caller is never retried: the job ends ``CANCELED``
        and the cancellation propagates.
        """
        job = self._job
        if self._once and self._succeeded_once:
            msg = f"job {job.name!r} ({job.id}) already succeeded and may run only once; call reset() first"
            raise AlreadySucceededError(msg, job_id=job.id)
        if self._running or job.is_executing:
            msg = f"cannot start job {job.name!r} ({job.id}): it is already {job.state.value}"
            raise JobStateError(msg, job_id=job.id)
        remaining = self._cooldown_remaining()
        if remaining > 0.0:
            msg = f"job {job.name!r} ({job.id}) is in cooldown for another {remaining:.3f} s"
            raise CooldownError(msg, remaining=remaining, job_id=job.id)
        self._running = True
        self._stop_requested = False
        self._attempts = 0
        self._starts += 1
        try:
            # One run of the job for the whole start: it stays RUNNING between attempts,
            # so stop() or job.cancel() at any point ends it CANCELED (CANCELING -> CANCELED).
            await job._run(params, anyio.TASK_STATUS_IGNORED, self._attempts_loop)
        finally:
            self._running = False
            if self._attempts:
                self._begin_cooldown()
            finished = self._finished
            if finished is not None:
                self._finished = None
                finished.set()
        state = job.state
        if state is State.SUCCEEDED:
            self._successes += 1
            self._succeeded_once = True
            return cast("R", job.result)
        if state is State.CANCELED:
            raise self._canceled_error()
        error = job.error
        assert isinstance(error, Exception)  # noqa: S101 - a FAILED run ends with the Exception its body raised
        self._failures += 1
        self._last_error = error_text(error)
        raise error

    def _canceled_error(self) -> JobCanceledError:
        job = self._job
        how = "stop()" if self._stop_requested else "job.cancel()"
        msg = f"job {job.name!r} ({job.id}) was canceled by {how}"
        error = JobCanceledError(msg, job_id=job.id)
        error.__cause__ = job.error
        return error

    async def _attempt(self, *, again: bool) -> Exception | None:
        """Run one attempt; return its error (``None`` on success)."""
        self._attempts += 1
        error = await self._job._try(self._timeout, again=again)
        if error is not None:
            self._last_error = error_text(error)
        return error

    async def _attempts_loop(self) -> None:
        """The body of the job's run: every attempt, and the waits between them.

        Returns when an attempt succeeded; raises the error the run ends with.
        Cancellation (the job's, by stop() or job.cancel(), or the caller's) is
        never caught here.
        """
        error = await self._attempt(again=False)
        if error is None:
            return
        policy = self._retry
        attempts = self._max_attempts()
        if policy is None or attempts <= 1 or not policy.should_retry(error):
            raise error
        # The first try already failed; only now is a retrying object worth building
        # (a fresh one for every start: tenacity keeps per-object iteration state).
        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(attempts),
            wait=self._wait,
            retry=self._tenacity_predicate,
            before_sleep=self._before_sleep,
            sleep=self._job._pause,  # a wait that job.cancel() and stop() cut short
            reraise=True,
        )
        first_error: Exception | None = error
        async for attempt in retrying:
            if first_error is not None:
                # Replay the try made above so tenacity counts it as attempt 1.
                error, first_error = first_error, None
            elif self._job.state is State.CANCELING:
                return  # stopped while waiting: the run ends CANCELED
            else:
                error = await self._attempt(again=True)
            if error is None:
                attempt.retry_state.set_result(None)
            else:
                attempt.retry_state.set_exception((type(error), error, error.__traceback__))
        if error is not None:  # pragma: no cover - tenacity re-raises it (reraise=True)
            raise error

    def _max_attempts(self) -> int:
        policy = self._retry
        attempts = 1 if policy is None else policy.attempts
        cap = testing_mode().attempts
        return attempts if cap is None else min(attempts, cap)

    def _tenacity_predicate(self, retry_state: tenacity.RetryCallState) -> bool:
        outcome = retry_state.outcome
        if outcome is None or self._retry is None:
            return False
        error = outcome.exception()
        return error is not None and self._retry.should_retry(error)

    def _wait(self, retry_state: tenacity.RetryCallState) -> float:
        if testing_mode().enabled or self._retry is None:
            return 0.0
        return self._retry.wait_before(retry_state.attempt_number + 1)

    def _before_sleep(self, retry_state: tenacity.RetryCallState) -> None:
        if not (_hooks.active and _hooks.wanted(_hooks.RETRY_SCHEDULED)):
            return  # e.g. the default hook, while info is filtered out: nothing is built
        job = self._job
        outcome = retry_state.outcome
        next_action = retry_state.next_action
        _hooks.emit(
            _hooks.HookEvent(
                name=_hooks.RETRY_SCHEDULED,
                job_id=job.id,
                job_name=job.name,
                labels=job.labels,
                state=job.state,
                error=None if outcome is None else outcome.exception(),
                attempt=retry_state.attempt_number,
                wait=0.0 if next_action is None else next_action.sleep,
            )
        )

    async def stop(self, wait: bool = True) -> bool:  # noqa: FBT001, FBT002 - the contract's signature
        """Cancel the running attempt and every further retry.

        The :meth:`start` in progress then raises :class:`~anyjob.JobCanceledError`.

        Args:
            wait: Return only once that ``start`` has finished unwinding.

        Returns:
            True when a start was in progress.
        """
        if not self.request_stop():
            await anyio.lowlevel.checkpoint()
            return False
        if wait and self._running:
            finished = self._finished
            if finished is None:
                finished = self._finished = anyio.Event()
            await finished.wait()
        else:
            await anyio.lowlevel.checkpoint()
        return True

    def request_stop(self) -> bool:
        """Like :meth:`stop` without waiting (callable from synchronous code).

        Returns:
            True when a start was in progress (it now unwinds and raises
            :class:`~anyjob.JobCanceledError`).
        """
        if not self._running or self._job.is_done:
            # Nothing to stop (or the job has just ended, and a listener is told).
            return False
        self._stop_requested = True
        # The job is RUNNING from the first attempt to the last, waits between them
        # included: canceling it stops whatever is happening now (no-op if CANCELING).
        self._job.cancel()
        return True

    def stats(self) -> ExecutorStats:
        """A frozen snapshot of the counters."""
        return ExecutorStats(
            attempts=self._attempts,
            retries=max(self._attempts - 1, 0),
            cooldown_remaining=self._cooldown_remaining(),
            starts=self._starts,
            successes=self._successes,
            failures=self._failures,
            last_error=self._last_error,
        )

    def reset(self) -> None:
        """Clear the counters, the cooldown and the once lock.

        Raises:
            JobStateError: A start is in progress.
        """
        if self._running:
            job = self._job
            msg = f"cannot reset the executor of job {job.name!r} ({job.id}) while it runs"
            raise JobStateError(msg, job_id=job.id)
        self._succeeded_once = False
        self._cooldown_until = None
        self._cooldown_until_mono = None
        self._attempts = 0
        self._starts = 0
        self._successes = 0
        self._failures = 0
        self._last_error = None
