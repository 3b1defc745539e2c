"""A hypothesis state machine drives a JobManager over a MemoryStore: submit, release, cancel, retry, cleanup.

After every step the store's indexes and running tallies are recounted from its
records, and every job's state is checked against a model of what the rules
did. Jobs run in place in the manager's workers (no retry or timeout) and
through an Executor (``timeout=``), at most two at a time, so some wait. The
event loop runs in a blocking portal so the rules can stay synchronous; every
rule ends by settling: jobs released or canceled are awaited to their end, and
every running job has entered its function.
"""

from __future__ import annotations

import contextvars
import functools
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from anyjob import Context, JobManager, JobNotFoundError, JobStateError, State, instrumentation
from anyjob.stores import JobRecord, MemoryStore
from conftest import DelegatingStore

TIMEOUT = 10.0
_bound: contextvars.ContextVar[str] = contextvars.ContextVar("bound", default="")
_DONE = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELED})
_EXECUTING = frozenset({State.RUNNING, State.CANCELING})


class Gate:
    """What one job's function waits on, and how it ends once released."""

    def __init__(self) -> None:
        self.entered = anyio.Event()
        self.release = anyio.Event()
        self.outcome = "return"
        self.binds = False  # sets a context variable (its spec then runs jobs isolated)

    def rearm(self) -> None:
        self.entered = anyio.Event()
        self.release = anyio.Event()


class ManagerMachine(RuleBasedStateMachine):
    backend = "asyncio"
    store_kind = "memory"
    job_ids = Bundle("job_ids")

    def __init__(self) -> None:
        super().__init__()
        instrumentation.set_hooks([])
        self._portal_cm = start_blocking_portal(self.backend)
        self.portal: BlockingPortal = self._portal_cm.__enter__()
        if self.store_kind == "memory":
            self.store: Any = MemoryStore()
            self.records: MemoryStore = self.store
        else:  # reached only through the Store protocol: batched writes, claims, a flusher
            self.store = DelegatingStore()
            self.records = self.store.inner
        self.manager = JobManager(self.store, max_concurrency=2)
        self._manager_cm = self.portal.wrap_async_context_manager(self.manager)
        self._manager_cm.__enter__()
        self.gates: dict[str, Gate] = {}
        self.canceled: set[str] = set()  # canceled by a rule since the latest (re)submission
        self.runs: dict[str, int] = {}  # times each job's function was entered
        self.deleted: set[str] = set()
        self.count = 0

    def teardown(self) -> None:
        try:
            for gate in self.gates.values():
                self.portal.call(gate.release.set)
            self._manager_cm.__exit__(None, None, None)
            # Shutdown loses nothing: every record is in a final state.
            for job_id in self.gates.keys() - self.deleted:
                assert self.records.state_now(job_id) in _DONE
            self.indexes_match_the_records()
        finally:
            self._portal_cm.__exit__(None, None, None)
            instrumentation.reset_hooks()

    async def _job(self, ctx: Context) -> str:
        gate = self.gates[ctx.id]
        self.runs[ctx.id] = self.runs.get(ctx.id, 0) + 1
        assert _bound.get() == ""  # nothing another job set leaks in
        if gate.binds:
            _bound.set(ctx.id)
        gate.entered.set()
        await gate.release.wait()
        assert _bound.get() == (ctx.id if gate.binds else "")
        if gate.outcome == "raise":
            msg = "failed on purpose"
            raise ValueError(msg)
        return "done"

    async def _settle(self) -> None:
        """Await every job that can end now; then check every running job entered its function."""
        with anyio.fail_after(TIMEOUT):
            while True:
                await self.manager._sink.settle()
                ending = [
                    job_id
                    for job_id, gate in self.gates.items()
                    if (state := self.records.state_now(job_id)) is State.CANCELING
                    or (state is State.RUNNING and gate.release.is_set())
                ]
                if not ending:
                    break
                for job_id in ending:
                    await self.manager.wait(job_id)
            for job_id, gate in self.gates.items():
                if self.records.state_now(job_id) is State.RUNNING:
                    await gate.entered.wait()
            await self.manager._sink.settle()

    def all_records(self) -> dict[str, JobRecord]:
        """The MemoryStore's own records, by id (read, never changed here)."""
        return self.records._index.records

    def settle(self) -> None:
        self.portal.call(self._settle)

    def state(self, job_id: str) -> State | None:
        self.portal.call(self.manager._sink.settle)  # a protocol store is written in batches
        return self.records.state_now(job_id)

    # -- rules ------------------------------------------------------------------------

    @rule(
        target=job_ids,
        priority=st.integers(-1, 1),
        through_executor=st.booleans(),
        binds=st.booleans(),
    )
    def submit(self, priority: int, through_executor: bool, binds: bool) -> str:
        self.count += 1
        job_id = f"job-{self.count}"
        self.gates[job_id] = gate = self.portal.call(Gate)
        gate.binds = binds
        submit = functools.partial(
            self.manager.submit,
            self._job,
            id=job_id,
            priority=priority,
            timeout=60 if through_executor else None,
        )
        ref = self.portal.call(submit)
        assert ref.id == job_id
        self.settle()
        assert self.state(job_id) in {State.CREATED, State.RUNNING}
        return job_id

    @rule(job_id=job_ids, outcome=st.sampled_from(["return", "raise"]))
    def release(self, job_id: str, outcome: str) -> None:
        gate = self.gates[job_id]
        if gate.release.is_set():
            return  # already released: its outcome is decided
        before = self.state(job_id)
        gate.outcome = outcome
        self.portal.call(gate.release.set)
        self.settle()
        if before is State.RUNNING:
            assert self.state(job_id) is (State.SUCCEEDED if outcome == "return" else State.FAILED)

    @rule(job_id=job_ids)
    def cancel(self, job_id: str) -> None:
        before = self.state(job_id)
        if job_id in self.deleted:
            with pytest.raises(JobNotFoundError):
                self.portal.call(self.manager.cancel, job_id)
            return
        changed = self.portal.call(self.manager.cancel, job_id)
        assert changed is (before in {State.CREATED, State.RUNNING})
        if changed:
            self.canceled.add(job_id)
            if before is State.CREATED:
                assert self.state(job_id) is State.CANCELED  # at once
        self.settle()
        if changed:
            assert self.state(job_id) is State.CANCELED

    @rule(job_id=job_ids)
    def retry(self, job_id: str) -> None:
        before = self.state(job_id)
        if job_id in self.deleted:
            with pytest.raises(JobNotFoundError):
                self.portal.call(self.manager.retry, job_id)
            return
        if before not in {State.FAILED, State.CANCELED}:
            with pytest.raises(JobStateError):
                self.portal.call(self.manager.retry, job_id)
            assert self.state(job_id) is before
            return
        self.portal.call(self.gates[job_id].rearm)
        ref = self.portal.call(self.manager.retry, job_id)
        assert ref.id == job_id
        self.canceled.discard(job_id)
        self.settle()
        assert self.state(job_id) in {State.CREATED, State.RUNNING}

    @rule()
    def cleanup(self) -> None:
        done_before = {job_id for job_id in self.gates.keys() - self.deleted if self.state(job_id) in _DONE}
        deleted = self.portal.call(self.manager.cleanup, 0)
        gone = {job_id for job_id in done_before if self.state(job_id) is None}
        assert deleted == len(gone)
        self.deleted |= gone
        assert all(self.state(job_id) is not None for job_id in self.gates.keys() - self.deleted)

    # -- invariants ---------------------------------------------------------------------

    @invariant()
    def indexes_match_the_records(self) -> None:
        self.portal.call(self.manager._sink.settle)
        self.records._index.check()  # settles first, as every index reader does
        stats = self.portal.call(self.records.statistics)
        counts = dict.fromkeys(State, 0)
        durations: list[float] = []
        for record in self.all_records().values():
            counts[record.state] += 1
            if record.state in _DONE and record.started is not None and record.ended is not None:
                durations.append(max(record.ended - record.started, 0.0))
        assert dict(stats.by_state) == counts
        assert stats.average_duration == pytest.approx(sum(durations) / len(durations) if durations else 0.0)

    @invariant()
    def the_manager_tracks_exactly_its_unfinished_jobs(self) -> None:
        self.portal.call(self.manager._sink.settle)
        unfinished = {job_id for job_id, record in self.all_records().items() if record.state not in _DONE}
        statistics = self.manager._statistics()  # the only manager over the store: it owns them all
        assert statistics.live == len(unfinished)
        executing = sum(1 for record in self.all_records().values() if record.state in _EXECUTING)
        assert statistics.executing == executing
        assert executing <= 2  # max_concurrency

    @invariant()
    def every_job_is_where_the_rules_put_it(self) -> None:
        for job_id, gate in self.gates.items():
            state = self.state(job_id)
            if job_id in self.deleted:
                assert state is None
                continue
            record = self.all_records()[job_id]
            assert record.attempts == self.runs.get(job_id, 0)
            if job_id in self.canceled:
                assert state is State.CANCELED
            elif state is State.SUCCEEDED:
                assert gate.outcome == "return"
                assert record.result == "done"
            elif state is State.FAILED:
                assert gate.outcome == "raise"
                assert record.error_type == "ValueError"
            else:
                assert state is not State.CANCELED

    @invariant()
    def stats_agree_with_the_records(self) -> None:
        stats = self.portal.call(self.manager.stats)
        counts = dict.fromkeys(State, 0)
        for record in self.all_records().values():
            counts[record.state] += 1
        assert dict(stats.by_state) == counts
        assert stats.total == len(self.all_records())


class AsyncioManagerMachine(ManagerMachine):
    backend = "asyncio"


class TrioManagerMachine(ManagerMachine):
    backend = "trio"


class AsyncioProtocolStoreMachine(ManagerMachine):
    backend = "asyncio"
    store_kind = "protocol"


class TrioProtocolStoreMachine(ManagerMachine):
    backend = "trio"
    store_kind = "protocol"


_settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestManagerMachineAsyncio = AsyncioManagerMachine.TestCase
TestManagerMachineAsyncio.settings = _settings
TestManagerMachineTrio = TrioManagerMachine.TestCase
TestManagerMachineTrio.settings = _settings
TestProtocolStoreMachineAsyncio = AsyncioProtocolStoreMachine.TestCase
TestProtocolStoreMachineAsyncio.settings = _settings
TestProtocolStoreMachineTrio = TrioProtocolStoreMachine.TestCase
TestProtocolStoreMachineTrio.settings = _settings
