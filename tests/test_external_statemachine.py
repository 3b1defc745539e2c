"""A hypothesis state machine drives external jobs through two managers over one store.

Manager A and manager B share the store (one MemoryStore, one MemoryStore behind the
async protocol, one SQLite file opened twice, one PostgreSQL schema opened twice).
The rules ``create`` external jobs (no ``stale_after``, a long one, a short one) and
report on them by id through either manager: ``update`` (valid and invalid progress),
``complete``, ``fail`` (a str, a raised and an unraised exception), ``cancel``,
``retry``; ``stale`` lets a silent job pass its short ``stale_after``. After every
rule the jobs it touched (and those a sweep may end) are read with ``get()`` through
A and B, every job is listed through A, each compared with a model of what the rules
did; then manager A's ``events()`` stream, collected all along, is awaited until it
caught up with the store, and ``wait()`` through A and B of each job that ended. Every
state observed (in a ``get()``, in the info a report returned, in A's events) must
follow the one seen before it by ``State.can_become(new, record=True)``; the same
state again is allowed (progress), and so is a ``complete``/``fail`` of a job never
updated, which passes through RUNNING in one write.

A job with the short ``stale_after`` that is executing may be ended by a sweep at any
moment: the model accepts that end (FAILED with ``JobLostError``, or CANCELED when it
was canceling) wherever it is seen, and nowhere else.

The event loop runs in a blocking portal so the rules stay synchronous, as in
``tests/test_manager_statemachine.py``; every store kind runs on asyncio and trio.
"""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, precondition, rule, run_state_machine_as_test
from tests.external_model import (
    _CANCELED,
    _CANCELING,
    _CREATED,
    _FAILED,
    _RUNNING,
    _SUCCEEDED,
    FAILURES,
    INVALID,
    POLL,
    PROGRESS,
    RESULTS,
    SHORT,
    STALE_AFTER,
    TIMEOUT,
    VIA,
    Model,
    Outcome,
    _outcome,
    failure,
    step_allowed,
)

from anyjob import (
    JobCanceledError,
    JobEvent,
    JobInfo,
    JobManager,
    JobNotFoundError,
    JobStateError,
    State,
    instrumentation,
)
from anyjob.stores import MemoryStore, PostgresStore, SQLiteStore
from conftest import POSTGRES_DSN, DelegatingStore


class ExternalMachine(RuleBasedStateMachine):
    """External jobs over one store, reported on through two managers (A and B)."""

    backend = "asyncio"
    #: (A's store, B's store) over the same records, fresh for each example; set per test.
    make_stores: Callable[[], tuple[Any, Any]]
    jobs = Bundle("jobs")

    def __init__(self) -> None:
        super().__init__()
        instrumentation.set_hooks([])
        self._portal_cm = start_blocking_portal(self.backend)
        self.portal: BlockingPortal = self._portal_cm.__enter__()
        self._entered: list[Any] = []
        self.models: dict[str, Model] = {}
        self.seen: dict[str, State] = {}  # the latest state observed of each job
        self.events: dict[str, list[JobEvent]] = {}  # A's events, by job
        self.checked: dict[str, int] = {}  # how many of each job's events were checked
        self.count = 0
        self.reports = 0
        self.unknown = 0
        self.stale_waits = 0
        try:
            store_a, store_b = self.make_stores()
            self.a = JobManager(store_a)
            self.b = JobManager(store_b)
            for manager in (self.a, self.b):
                cm = self.portal.wrap_async_context_manager(manager)
                cm.__enter__()
                self._entered.append(cm)
            self.managers = {"A": self.a, "B": self.b}
            self._arrived = self.portal.call(anyio.Event)
            self.stream = self.portal.call(self._subscribe)
            self._collector = self.portal.start_task_soon(self._collect)
        except BaseException:
            self._close()
            raise

    async def _subscribe(self) -> Any:
        return self.a.events()

    async def _collect(self) -> None:
        async for event in self.stream:
            self.events.setdefault(event.job_id, []).append(event)
            arrived, self._arrived = self._arrived, anyio.Event()
            arrived.set()

    def _close(self) -> None:
        try:
            for cm in reversed(self._entered):  # a closing manager ends its streams: the collector too
                cm.__exit__(None, None, None)
        finally:
            self._portal_cm.__exit__(None, None, None)
            instrumentation.reset_hooks()

    def teardown(self) -> None:
        try:
            self.settle(*self.models)
            self.portal.call(self.stream.close)
            self._entered.pop(0).__exit__(None, None, None)  # A
            self._collector.result(timeout=TIMEOUT)
        finally:
            self._close()

    # -- calls and observations -----------------------------------------------------------

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Outcome:
        return self.portal.call(_outcome, functools.partial(fn, *args, **kwargs))

    def expired(self, job_id: str, where: str) -> None:
        """A sweep ended the job before a rule's call: the model (and what was seen) say so."""
        self.models[job_id].expire()
        self.observe(job_id, self.models[job_id].state, where)

    def observe(self, job_id: str, state: State, where: str) -> None:
        before = self.seen.get(job_id)
        if before is not None:
            assert step_allowed(before, state), f"{where}: job {job_id} went {before} -> {state}"
        self.seen[job_id] = state

    def read(self, job_id: str, via: str, info: JobInfo | None = None) -> JobInfo:
        """The job as *via* reads it with ``get()`` (or *info*, listed), checked against the model."""
        model = self.models[job_id]
        if info is None:
            outcome = self.call(self.managers[via].get, job_id)
            info = outcome.value
            assert info is not None, f"job {job_id} is gone (read through {via}): {outcome!r}"
        self.observe(job_id, info.state, f"read through {via}")
        if info.state is not model.state and model.expired_looks_like(info):
            model.expire()
        model.check(info, f"read of {job_id} through {via}")
        return info

    def settle(self, *touched: str) -> None:
        """Every job checked; A's events caught up with the store; the ends awaited through A and B.

        The jobs the rule touched, and those a sweep may end, are read with ``get()``
        through A and B; all of them are listed through A.
        """
        for job_id in touched:
            self.read(job_id, "B")
        infos = {job_id: self.read(job_id, "A") for job_id in self.models if self.models[job_id].may_go_stale}
        for job_id in touched:
            infos[job_id] = self.read(job_id, "A")
        listed = self.call(self.a.list, limit=1000)
        assert listed.error is None, repr(listed)
        assert sorted(info.id for info in listed.value) == sorted(self.models)
        for info in listed.value:
            if info.id not in infos:
                infos[info.id] = self.read(info.id, "A", info)
        self.portal.call(self._catch_up, infos)
        self.check_events()
        for job_id, model in self.models.items():
            if model.state.is_done and not model.waited:
                for via, manager in self.managers.items():
                    info = self.call(manager.wait, job_id, timeout=TIMEOUT).value
                    assert info is not None
                    assert info.state is model.state, f"wait through {via}: {info!r}"
                model.waited = True

    async def _catch_up(self, infos: dict[str, JobInfo]) -> None:
        """Until the latest event A had of each job is the job as A reads it."""
        for job_id, read in infos.items():
            info = read
            latest = None
            with anyio.move_on_after(TIMEOUT):
                while True:
                    arrived = self._arrived
                    events = self.events.get(job_id)
                    latest = (events[-1].state, events[-1].progress, events[-1].message) if events else None
                    if latest == (info.state, info.progress, info.message):
                        break
                    got = await self.a.get(job_id)  # a sweep may have ended it since it was read
                    assert got is not None
                    if (got.state, got.progress, got.message) != (info.state, info.progress, info.message):
                        info = got
                        continue
                    await arrived.wait()  # set at once if an event came since it was captured
            assert latest == (info.state, info.progress, info.message), (
                f"A's events of job {job_id} did not catch up in {TIMEOUT} s: the latest is {latest}, "
                f"A reads {info!r}; all: {self.events.get(job_id)}"
            )

    def check_events(self) -> None:
        """Every transition in A's events of each job is one a record may make."""
        for job_id, events in self.events.items():
            assert job_id in self.models, f"an event of a job never created: {events[0]!r}"
            done = self.checked.get(job_id, 0)
            if done == 0:
                assert events[0].state is _CREATED, f"job {job_id}'s first event: {events[0]!r}"
            for before, after in zip(events[max(done - 1, 0) :], events[max(done, 1) :], strict=False):
                assert step_allowed(before.state, after.state), (
                    f"A's events of job {job_id} went {before.state} -> {after.state}: "
                    f"{[(e.state.value, e.progress) for e in events]}"
                )
            self.checked[job_id] = len(events)

    # -- what the rules do, checked against the model ------------------------------------

    def new_job(self, via: str, stale_after: float | None, message: str | None = None) -> str:
        self.count += 1
        job_id = f"ext-{self.count}"
        name = f"job{self.count}"
        params = {"n": self.count}
        outcome = self.call(
            self.managers[via].create,
            name,
            params,
            labels={"made_by": via},
            id=job_id,
            message=message,
            stale_after=stale_after,
        )
        assert outcome.error is None, repr(outcome.error)
        assert outcome.value.id == job_id
        self.models[job_id] = Model(name, params, stale_after, via, message)
        self.settle(job_id)
        return job_id

    def report(self, job_id: str, via: str, what: str, **kwargs: Any) -> None:
        """``update``, ``complete`` or ``fail`` through *via*, checked against the model."""
        model = self.models[job_id]
        could_go_stale = model.may_go_stale
        outcome = self.call(getattr(self.managers[via], what), job_id, **kwargs)
        error = outcome.error
        if could_go_stale and isinstance(error, JobStateError):
            self.expired(job_id, f"{what} found it done")  # a sweep ended it first
        if model.state.is_done:
            assert isinstance(error, JobStateError), f"{what} of a {model.state} job: {outcome!r}"
            assert error.job_id == job_id
            assert "already" in str(error)
        elif model.state is _CANCELING:
            assert isinstance(error, JobCanceledError), f"{what} after a cancel: {outcome!r}"
            assert error.job_id == job_id
            model.end(_CANCELED)
        else:
            assert error is None, f"{what} of job {job_id} ({model.state}) raised {error!r}"
            if what == "update":
                model.start()
                if kwargs["progress"] is not None:
                    model.progress = kwargs["progress"]
                model.message = kwargs["message"]
            elif what == "complete":
                model.end(_SUCCEEDED)
                model.result = kwargs["result"]
            else:
                model.end(_FAILED)
                given = kwargs["error"]
                if isinstance(given, str):
                    model.error, model.error_type = given, None
                else:
                    model.error, model.error_type = str(given), type(given).__qualname__
                    raised = given.__traceback__ is not None
                    model.traceback = f"{type(given).__qualname__}: {given}" if raised else None
            info: JobInfo = outcome.value
            self.observe(job_id, info.state, f"the info {what} through {via} returned")
            model.check(info, f"the info {what} through {via} returned")
        self.settle(job_id)

    def do_update(self, job_id: str, via: str, progress: float | None) -> None:
        self.reports += 1  # each report's own message: A's events tell it apart
        self.report(job_id, via, "update", progress=progress, message=f"report {self.reports}")

    def do_cancel(self, job_id: str, via: str) -> None:
        model = self.models[job_id]
        could_go_stale = model.may_go_stale
        outcome = self.call(self.managers[via].cancel, job_id)
        assert outcome.error is None, repr(outcome.error)
        changed = outcome.value
        if could_go_stale and model.state is _RUNNING and changed is False:
            self.expired(job_id, "cancel found it done")  # a sweep ended it first
        if model.state is _CREATED:
            assert changed is True
            model.state = _CANCELED  # at once, never started
            model.ended = True
            model.waited = False
        elif model.state is _RUNNING:
            assert changed is True
            model.state = _CANCELING
        else:
            assert changed is False, f"cancel of a {model.state} job said it canceled it"
        self.settle(job_id)

    # -- rules ------------------------------------------------------------------------

    @rule(target=jobs, via=VIA, stale_after=STALE_AFTER, message=st.sampled_from([None, "queued"]))
    def create(self, via: str, stale_after: float | None, message: str | None) -> str:
        return self.new_job(via, stale_after, message)

    @rule(
        target=jobs,
        made_by=VIA,
        stale_after=STALE_AFTER,
        reports=st.lists(st.tuples(VIA, PROGRESS), min_size=1, max_size=3),
    )
    def start(self, made_by: str, stale_after: float | None, reports: list[tuple[str, float | None]]) -> str:
        """A new job reported on a few times, through either manager: a RUNNING job to work on."""
        job_id = self.new_job(made_by, stale_after)
        for via, progress in reports:
            self.do_update(job_id, via, progress)
        return job_id

    @rule(job_id=jobs, via=VIA, progress=PROGRESS)
    def update(self, job_id: str, via: str, progress: float | None) -> None:
        self.do_update(job_id, via, progress)

    @rule(job_id=jobs, via=VIA, result=RESULTS)
    def complete(self, job_id: str, via: str, result: Any) -> None:
        self.report(job_id, via, "complete", result=result)

    @rule(job_id=jobs, via=VIA, kind=FAILURES)
    def fail(self, job_id: str, via: str, kind: str) -> None:
        self.report(job_id, via, "fail", error=failure(kind, job_id))

    @rule(job_id=jobs, via=VIA)
    def cancel(self, job_id: str, via: str) -> None:
        self.do_cancel(job_id, via)

    @rule(
        made_by=VIA,
        canceler=VIA,
        reporter=VIA,
        then=st.sampled_from(["update", "complete", "fail"]),
        kind=FAILURES,
    )
    def cancel_while_running(self, made_by: str, canceler: str, reporter: str, then: str, kind: str) -> None:
        """A RUNNING job canceled (CANCELING): its reporter's next report raises JobCanceledError."""
        job_id = self.new_job(made_by, None)
        self.do_update(job_id, made_by, 0.25)
        self.do_cancel(job_id, canceler)
        assert self.models[job_id].state is _CANCELING
        if then == "update":
            self.do_update(job_id, reporter, 0.5)
        elif then == "complete":
            self.report(job_id, reporter, "complete", result="late")
        else:
            self.report(job_id, reporter, "fail", error=failure(kind, job_id))
        assert self.models[job_id].state is _CANCELED

    @rule(job_id=jobs, via=VIA)
    def retry(self, job_id: str, via: str) -> None:
        model = self.models[job_id]
        could_go_stale = model.may_go_stale
        outcome = self.call(self.managers[via].retry, job_id)
        if could_go_stale and outcome.error is None:
            self.expired(job_id, "retry found it done")  # a sweep ended it first
        if model.state in {_FAILED, _CANCELED}:
            assert outcome.error is None, repr(outcome.error)
            assert outcome.value.id == job_id
            model.requeue()
        else:
            assert isinstance(outcome.error, JobStateError), f"retry of a {model.state} job: {outcome!r}"
            assert outcome.error.job_id == job_id
        self.settle(job_id)

    @rule(job_id=jobs, via=VIA, bad=st.sampled_from(INVALID))
    def invalid_report(self, job_id: str, via: str, bad: tuple[str, dict[str, Any], type[Exception]]) -> None:
        what, kwargs, expected = bad
        model = self.models[job_id]
        if what == "update":
            kwargs = {"progress": None, "message": None, **kwargs}
        before = self.read(job_id, "A")
        could_go_stale = model.may_go_stale
        outcome = self.call(getattr(self.managers[via], what), job_id, **kwargs)
        if model.state.is_done or could_go_stale:  # refused either way: for the argument, or the state
            assert isinstance(outcome.error, expected | JobStateError), repr(outcome)
        else:
            assert isinstance(outcome.error, expected), (
                f"{what}({kwargs}) of a {model.state} job: {outcome!r}"
            )
        after = self.read(job_id, "A")
        if after.state is before.state or not model.expired:  # else a sweep ended it meanwhile
            assert after == before, "an invalid report changed the job"
        self.settle(job_id)

    @precondition(lambda self: self.unknown < 2)  # cheap, but not worth many steps
    @rule(via=VIA, what=st.sampled_from(["update", "complete", "fail", "cancel", "retry", "get"]))
    def unknown_id(self, via: str, what: str) -> None:
        self.unknown += 1
        args: dict[str, Any] = {"fail": {"error": "x"}, "update": {"progress": 0.5}}.get(what, {})
        outcome = self.call(getattr(self.managers[via], what), "no-such-job", **args)
        if what == "get":
            assert outcome.error is None
            assert outcome.value is None
        else:
            assert isinstance(outcome.error, JobNotFoundError), repr(outcome)
            assert outcome.error.job_id == "no-such-job"

    @precondition(lambda self: self.stale_waits < 1)  # the slow rule: a short stale_after at least
    @rule(made_by=VIA, reporter=VIA, canceler=st.sampled_from([None, "A", "B"]))
    def stale(self, made_by: str, reporter: str, canceler: str | None) -> None:
        """A job silent past its short ``stale_after`` ends (FAILED, JobLostError; CANCELED if canceling).

        The oldest job that may go stale now, or a new one, made RUNNING by *reporter*
        (and CANCELING by *canceler*), then left silent: A's ``wait`` sees it end.
        """
        self.stale_waits += 1
        silent = next((job_id for job_id, model in self.models.items() if model.may_go_stale), None)
        if silent is None:
            silent = self.new_job(made_by, SHORT)
            self.do_update(silent, reporter, 0.5)
            if canceler is not None:
                self.do_cancel(silent, canceler)
        model = self.models[silent]
        info = self.call(self.a.wait, silent, timeout=TIMEOUT).value
        assert info is not None
        assert info.state.is_done, f"job {silent} ({model.state}) did not go stale in {TIMEOUT} s: {info!r}"
        if model.may_go_stale:
            assert model.expired_looks_like(info), repr(info)
            model.expire()
        self.observe(silent, info.state, "A's wait")
        model.check(info, "A's wait of a silent job")
        self.settle(silent)


def _stores(kind: str, make_store: Callable[[], Any], opened: list[Any]) -> tuple[Any, Any]:
    """(A's store, B's store): two ways to one fresh set of records (B's SQL stores added to *opened*)."""
    first = make_store()
    if kind == "memory":
        assert isinstance(first, MemoryStore)
        return first, first
    if kind == "protocol":
        return first, DelegatingStore(first.inner)
    first.poll_interval = POLL  # A hears of B's changes by polling: each rule waits for that
    second: SQLiteStore | PostgresStore
    if kind == "sqlite":
        second = SQLiteStore(pathlib.Path(first.path), poll_interval=POLL)
    else:
        second = PostgresStore(POSTGRES_DSN, schema=first.schema, poll_interval=POLL)
    opened.append(second)
    return first, second


SETTINGS = settings(
    max_examples=12,
    stateful_step_count=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.usefixtures("silent")
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_external_jobs_state_machine(backend: str, store_kind: str, make_store: Callable[[], Any]) -> None:
    opened: list[Any] = []
    machine = type(
        f"External{store_kind.title()}{backend.title()}Machine",
        (ExternalMachine,),
        {
            "backend": backend,
            "make_stores": staticmethod(functools.partial(_stores, store_kind, make_store, opened)),
        },
    )
    try:
        run_state_machine_as_test(machine, settings=SETTINGS)
    finally:
        for store in opened:
            store.close()


@pytest.mark.anyio
@pytest.mark.usefixtures("silent")
async def test_a_retry_does_not_move_updated_at_back(make_store: Callable[[], Any]) -> None:
    async with JobManager(make_store()) as jobs:
        ref = await jobs.create("a")
        await anyio.sleep(0.002)  # not a synchronization: the end's time must differ from the creation's
        failed = await jobs.fail(ref.id, "broke")
        assert failed.updated_at > failed.created_at
        await jobs.retry(ref.id)
        again = await jobs.get(ref.id)
    assert again is not None
    assert again.state is _CREATED
    assert again.updated_at >= failed.updated_at, (again.updated_at, failed.updated_at)
    assert again.updated_at >= again.scheduled_at
