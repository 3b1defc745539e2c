"""A hypothesis state machine drives one Job through run / cancel / wait / set_progress in random orders.

Every state change the job makes is observed (through its listener, in the
event loop's thread) and checked against the one transition table. The event
loop runs in a blocking portal so the rules can stay synchronous.
"""

from __future__ import annotations

import math
from concurrent.futures import Future
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from anyjob import Context, Job, JobStateError, State, instrumentation

TIMEOUT = 10.0


class Script:
    """The job's function: blocks until told how to end, and may swallow its cancellation."""

    def __init__(self) -> None:
        self.release: anyio.Event | None = None
        self.outcome = "return"
        self.on_cancel = "propagate"

    async def __call__(self, ctx: Context) -> str:
        assert self.release is not None
        try:
            await self.release.wait()
        except anyio.get_cancelled_exc_class():
            if self.on_cancel == "return":
                return "swallowed"
            if self.on_cancel == "raise":
                msg = "error while unwinding"
                raise RuntimeError(msg) from None
            raise
        if self.outcome == "raise":
            msg = "failed on purpose"
            raise ValueError(msg)
        return "done"


class JobMachine(RuleBasedStateMachine):
    backend = "asyncio"

    def __init__(self) -> None:
        super().__init__()
        instrumentation.set_hooks([])
        self._cm = start_blocking_portal(self.backend)
        self.portal: BlockingPortal = self._cm.__enter__()
        self.script = Script()
        self.job: Job[str] = Job(self.script, name="machine")
        self.observed: list[State] = [State.CREATED]
        self.job._listener = self._observe
        self.future: Future[Any] | None = None
        self.runs = 0

    def _observe(self, job: Job[Any]) -> None:
        if job.state is not self.observed[-1]:
            self.observed.append(job.state)

    def teardown(self) -> None:
        try:
            if self.job.is_executing:
                self.portal.call(self.job.cancel)
                self._join()
        finally:
            self._cm.__exit__(None, None, None)
            instrumentation.reset_hooks()

    def _join(self) -> None:
        assert self.future is not None
        self.future.result(TIMEOUT)  # run never raises what the function raised
        self.future = None

    # -- rules -----------------------------------------------------------------

    @precondition(lambda self: not self.job.is_executing)
    @rule(
        outcome=st.sampled_from(["return", "raise"]),
        on_cancel=st.sampled_from(["propagate", "return", "raise"]),
    )
    def run(self, outcome: str, on_cancel: str) -> None:
        self.script.outcome = outcome
        self.script.on_cancel = on_cancel
        self.script.release = self.portal.call(anyio.Event)
        self.future, _ = self.portal.start_task(self.job.run, f"run {self.runs}")
        self.runs += 1
        assert self.job.state is State.RUNNING
        assert self.job.params == f"run {self.runs - 1}"
        assert self.job.result is None
        assert self.job.error is None
        assert self.job.ended_at is None
        assert self.job.progress == 0.0

    @precondition(lambda self: self.job.is_executing)
    @rule()
    def run_again_is_refused(self) -> None:
        with pytest.raises(JobStateError):
            self.portal.call(self.job.run)
        assert self.job.is_executing

    @precondition(lambda self: self.job.state is State.RUNNING)
    @rule()
    def finish(self) -> None:
        assert self.script.release is not None
        self.portal.call(self.script.release.set)
        self._join()
        expected = {"return": State.SUCCEEDED, "raise": State.FAILED}
        assert self.job.state is expected[self.script.outcome]
        if self.job.state is State.SUCCEEDED:
            assert self.job.result == "done"
            assert self.job.error is None
        else:
            assert self.job.error is not None

    @rule()
    def cancel(self) -> None:
        was = self.job.state
        assert self.portal.call(self.job.cancel) is (was is State.RUNNING)
        if was is State.RUNNING:
            # The loop thread may already be unwinding the function: the listener saw CANCELING.
            self._join()
            assert self.observed[-2:] == [State.CANCELING, State.CANCELED]
            assert self.job.state is State.CANCELED
        else:
            assert self.job.state is was

    @precondition(lambda self: not self.job.is_executing)
    @rule()
    def wait_when_idle_returns(self) -> None:
        self.portal.call(self.job.wait)

    @precondition(lambda self: self.job.state is State.RUNNING)
    @rule()
    def wait_while_running_returns_when_done(self) -> None:
        assert self.script.release is not None
        waiter, _ = self.portal.start_task(self._wait_then_state)
        self.portal.call(self.script.release.set)
        self._join()
        assert waiter.result(TIMEOUT) is self.job.state
        assert self.job.is_done

    async def _wait_then_state(self, *, task_status: anyio.abc.TaskStatus[None]) -> State:
        task_status.started()
        await self.job.wait()
        return self.job.state

    @precondition(lambda self: self.job.is_executing)
    @rule(
        value=st.floats(allow_nan=True, allow_infinity=True) | st.integers(-2, 2),
        message=st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=64),
    )
    def set_progress(self, value: float, message: str) -> None:
        # Made in the loop's thread, as a run makes it (a context reports from other threads
        # through the loop).
        ctx = self.portal.call(Context, self.job, self.job._run_no)
        before = (self.job.progress, self.job.message)
        if math.isfinite(value) and 0 <= value <= 1:
            self.portal.call(ctx.set_progress, value, message)
            assert self.job.progress == float(value)
            assert self.job.message == message
        else:
            with pytest.raises(ValueError, match="progress"):
                self.portal.call(ctx.set_progress, value, message)
            assert (self.job.progress, self.job.message) == before
        assert self.job.is_executing

    # -- invariants --------------------------------------------------------------

    @invariant()
    def every_observed_transition_is_in_the_table(self) -> None:
        for old, new in zip(self.observed, self.observed[1:], strict=False):
            assert old.can_become(new), f"{old} -> {new}"
        assert self.observed[-1] is self.job.state

    @invariant()
    def state_facts_agree(self) -> None:
        job = self.job
        assert job.is_done == job.state.is_done
        assert job.is_executing == job.state.is_executing
        assert 0.0 <= job.progress <= 1.0
        if job.is_executing:
            assert job.ended_at is None
            assert job.started_at is not None
        if job.is_done:
            assert job.ended_at is not None
        if job.state is State.SUCCEEDED:
            assert job.error is None
        if job.state is State.FAILED:
            assert job.error is not None


class AsyncioJobMachine(JobMachine):
    backend = "asyncio"


class TrioJobMachine(JobMachine):
    backend = "trio"


_settings = settings(
    max_examples=100,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestJobMachineAsyncio = AsyncioJobMachine.TestCase
TestJobMachineAsyncio.settings = _settings
TestJobMachineTrio = TrioJobMachine.TestCase
TestJobMachineTrio.settings = _settings
