"""External jobs: records no worker runs, reported into by id through any manager over the store.

The store is the only owner of an external job's state: every report reads the record,
decides by its state, and writes with that state expected (an atomic compare-and-set);
when another report or a cancel got there first, it reads again. Nothing is kept here
but how often to look for silent jobs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, final

import anyio
import attrs

from anyjob._error_text import error_text, error_type_of, traceback_text
from anyjob._exceptions import JobCanceledError, JobNotFoundError, JobStateError, StoreError
from anyjob._kinds import EXTERNAL
from anyjob._limits import (
    check_message,
    check_name,
    check_progress,
    printable_text,
)
from anyjob._manager._intake import new_record
from anyjob._manager._publisher import Publisher
from anyjob._manager._recorder import Recorder
from anyjob._manager._sink import BatchSink, MemorySink
from anyjob._manager._specs import EXTERNAL_SPEC, SpecRegistry
from anyjob._manager._waiters import Waiters
from anyjob._records import JobInfo, JobRecord, JobRef, check_json_safe, now_timestamp
from anyjob._signal import Signal
from anyjob._state import State
from anyjob._time import to_seconds
from anyjob.instrumentation import _hooks
from anyjob.stores._base import RecordUpdate, Store

__all__ = ["Reports", "check_stale_after"]

_CREATED: Final = State.CREATED
_RUNNING: Final = State.RUNNING
_CANCELING: Final = State.CANCELING
_SUCCEEDED: Final = State.SUCCEEDED
_FAILED: Final = State.FAILED
_CANCELED: Final = State.CANCELED
#: How often an open manager looks for silent external jobs, at most (seconds).
SWEEP_INTERVAL: Final = 1.0
#: How often at the least, whatever ``stale_after`` a job was given.
MIN_SWEEP_INTERVAL: Final = 0.01
#: A report that keeps losing the race to other writes of the same job gives up after this many reads.
_TRIES: Final = 100
_END_EVENTS: Final = {
    _SUCCEEDED: _hooks.JOB_SUCCEEDED,
    _FAILED: _hooks.JOB_FAILED,
    _CANCELED: _hooks.JOB_CANCELED,
}

Fields = dict[str, Any]


def check_stale_after(value: object) -> float | None:
    """``stale_after``: ``None``, or a positive, finite number of seconds (or a ``timedelta``).

    Raises:
        TypeError: Not a number nor a ``timedelta``.
        ValueError: Zero, negative, NaN or infinite.
    """
    if value is None:
        return None
    seconds = to_seconds(value, "stale_after")
    if seconds <= 0.0:
        msg = f"stale_after must be more than 0 seconds, got {seconds!r}"
        raise ValueError(msg)
    return seconds


def _error_parts(error: object) -> tuple[str, str | None, str | None, BaseException | None]:
    """``fail``'s *error*: (message, error_type, traceback, the exception for hooks).

    Raises:
        TypeError: Neither a str nor an exception.
    """
    if isinstance(error, str):
        return printable_text(error), None, None, None
    if isinstance(error, BaseException):
        tb = traceback_text(error) if error.__traceback__ is not None else None
        return error_text(error), error_type_of(error), tb, error
    msg = f"error must be a str or an exception, not {type(error).__name__}"
    raise TypeError(msg)


@final
class Reports:
    """``create``, ``update``, ``complete``, ``fail`` of external jobs; how often to look for silent ones.

    Changes made here reach this manager's events, waiters and hooks from here (the
    store's feed tells only the other managers); the others learn them from their feed.
    """

    __slots__ = (
        "_origin",
        "_publisher",
        "_short",
        "_short_until",
        "_sink",
        "_store",
        "_waiters",
        "shortened",
    )

    def __init__(
        self,
        origin: str,
        store: Store,
        sink: MemorySink | BatchSink,
        publisher: Publisher,
        waiters: Waiters,
    ) -> None:
        self._origin = origin
        self._store = store
        self._sink = sink
        self._publisher = publisher
        self._waiters = waiters
        #: How long the sweep sleeps between two looks; shortened by jobs with a short ``stale_after``.
        self._short = SWEEP_INTERVAL  # the interval jobs with a short stale_after need
        self._short_until = 0.0  # ... until then (monotonic): their last report, plus twice it
        #: Fired when :attr:`sweep_interval` shortens: the upkeep looks again at once.
        self.shortened = Signal()

    # -- create ------------------------------------------------------------------------

    def new_record(
        self,
        name: object,
        params: Any,
        *,
        labels: Mapping[str, str] | None,
        job_id: str | None,
        message: str | None,
        stale_after: float | timedelta | None,
        registry: SpecRegistry,
    ) -> JobRecord:
        """The CREATED record of a new external job, every argument validated.

        Raises:
            TypeError, ValueError: An invalid argument; nothing is stored.
        """
        seconds = check_stale_after(stale_after)
        checked_message = check_message(message)
        record, _ = new_record(
            registry,
            EXTERNAL_SPEC,  # owner and function "<external>": no manager runs it
            params,
            origin=EXTERNAL,
            name=check_name(name),  # given: no function to name it after
            labels=labels,
            job_id=job_id,
            priority=0,
            delay=None,
            at=None,
        )
        record.message = checked_message
        record.stale_after = seconds
        return record

    async def create(self, record: JobRecord, *, generated_id: bool) -> JobRef:
        """Store *record* (from :meth:`new_record`); a checkpoint first, as every call is."""
        if record.stale_after is not None:
            self._watch(record.stale_after)
        await self._sink.settle()
        try:
            # The store keeps its own copy; the other managers' feeds tell them (this one tells its own).
            await self._store.insert(attrs.evolve(record), origin=self._origin)
        except anyio.get_cancelled_exc_class():
            if generated_id:  # nobody else knows the id: what may have been stored is withdrawn
                await self._withdraw(record.id)
            raise
        self.tell(record.info())
        return JobRef(record.id, record.name, datetime.fromtimestamp(record.scheduled, UTC))

    async def _withdraw(self, job_id: str) -> None:
        update = RecordUpdate(
            job_id, {"state": _CANCELED, "ended": now_timestamp()}, frozenset({_CREATED}), EXTERNAL
        )
        with anyio.CancelScope(shield=True), contextlib.suppress(StoreError):
            await self._store.apply([update], origin=self._origin)

    @property
    def sweep_interval(self) -> float:
        """How long the upkeep sleeps between two looks for silent jobs (seconds).

        Shorter while a job with a short ``stale_after`` was created or reported here
        lately (a quarter of it, at least ``MIN_SWEEP_INTERVAL``); ``SWEEP_INTERVAL`` again
        once no such report came for twice its ``stale_after``.
        """
        if self._short < SWEEP_INTERVAL and time.monotonic() >= self._short_until:
            self._short = SWEEP_INTERVAL
        return self._short

    def _watch(self, stale_after: float) -> None:
        interval = max(MIN_SWEEP_INTERVAL, stale_after / 4)
        if interval >= SWEEP_INTERVAL:
            return
        self._short_until = max(self._short_until, time.monotonic() + 2 * stale_after + interval)
        if interval < self.sweep_interval:
            self._short = interval
            self.shortened.fire()

    # -- reports -----------------------------------------------------------------------

    async def update(self, job_id: str, progress: object, message: object) -> JobInfo:
        """``JobManager.update``: progress and message (both optional: a sign of life)."""
        fields: Fields = {}
        if progress is not None:
            fields["progress"] = check_progress(progress)
        if message is not None:
            fields["message"] = check_message(message)

        def report(record: JobRecord, now: float) -> Fields:
            if record.state is _CREATED:
                return {**_started(record, now), **fields, "updated": now}
            return {**fields, "updated": now}

        return await self._report(job_id, "update", report, None)

    async def complete(self, job_id: str, result: Any) -> JobInfo:
        """``JobManager.complete``: SUCCEEDED with *result* (JSON-safe, copied)."""
        value = check_json_safe(result, "result")

        def report(record: JobRecord, now: float) -> Fields:
            return {**_ended(record, now, _SUCCEEDED), "result": value}

        return await self._report(job_id, "complete", report, None)

    async def fail(self, job_id: str, error: object) -> JobInfo:
        """``JobManager.fail``: FAILED with *error* (a message, or an exception)."""
        text, error_type, tb, exception = _error_parts(error)

        def report(record: JobRecord, now: float) -> Fields:
            fields = _ended(record, now, _FAILED)
            fields.update(error=text, error_type=error_type, traceback=tb)
            return fields

        return await self._report(job_id, "fail", report, exception)

    async def _report(
        self,
        job_id: str,
        what: str,
        report: Callable[[JobRecord, float], Fields],
        error: BaseException | None,
    ) -> JobInfo:
        """Read, decide by the state read, write expecting it; again if something came first."""
        for _ in range(_TRIES):
            record = await self._sink.record(job_id)  # a checkpoint (read your writes)
            if record is None:
                msg = f"no job with id {job_id!r}"
                raise JobNotFoundError(msg, job_id=job_id)
            state = record.state
            if record.owner != EXTERNAL:
                msg = (
                    f"cannot {what} job {record.name!r} ({job_id}): it is not an external job "
                    "(a job a manager runs reports through its ctx)"
                )
                raise JobStateError(msg, job_id=job_id)
            if state.is_done:
                msg = f"cannot {what} job {record.name!r} ({job_id}): it is {state.value} already"
                raise JobStateError(msg, job_id=job_id)
            now = now_timestamp()
            if state is _CANCELING or record.cancel_requested:
                if await self._write(record, {"state": _CANCELED, "ended": now, "updated": now}, None):
                    msg = f"job {record.name!r} ({job_id}) was canceled"
                    raise JobCanceledError(msg, job_id=job_id)
                continue
            info = await self._write(record, report(record, now), error)
            if info is not None:
                if record.stale_after is not None and not info.state.is_done:
                    self._watch(record.stale_after)
                return info
        msg = f"cannot {what} job {job_id!r}: it kept changing while this report was written"
        raise JobStateError(msg, job_id=job_id)

    async def _write(self, record: JobRecord, fields: Fields, error: BaseException | None) -> JobInfo | None:
        """Write *fields* if the job is still as read; its new info, published, or ``None``."""
        before = record.state  # first: over a MemoryStore, *record* is the store's own (apply changes it)
        update = RecordUpdate(record.id, fields, frozenset({before}), EXTERNAL)
        # Shielded: once written, who listens here must hear it (the feed tells only the others).
        applied = False
        with anyio.CancelScope(shield=True):
            applied = (await self._store.apply([update], origin=self._origin))[0]
        if not applied:
            return None
        info = attrs.evolve(record, **fields).info()
        self.tell(info, error, before)
        return info

    def tell(self, info: JobInfo, error: BaseException | None = None, before: State | None = None) -> None:
        """Tell this manager's events, waiters and hooks of a change (*before*: the state it left)."""
        self._publisher.info(info)
        state = info.state
        if state.is_done:
            self._waiters.wake(info.id, info)
        if not _hooks.active:
            return
        if before is _CREATED and state is not _CANCELED and _hooks.wanted(_hooks.JOB_STARTED):
            _hooks.emit_job_event(_hooks.JOB_STARTED, info.id, info.name, info.labels, _RUNNING, None, None)
        if state.is_done and _hooks.wanted(_END_EVENTS[state]):
            _hooks.emit_job_event(
                _END_EVENTS[state], info.id, info.name, info.labels, state, error, info.duration
            )

    # -- cancel and retry (through Control) -------------------------------------------

    async def canceled(self, job_id: str) -> None:
        """This manager's cancel reached a job not live here: if external, tell who listens here."""
        record = await self._store.get_record(job_id)
        if record is not None and record.owner == EXTERNAL:
            self.tell(record.info())

    @staticmethod
    def requeue_fields(record: JobRecord) -> Fields:
        """What ``retry`` writes to a finished external job: CREATED again, one more attempt."""
        return {**Recorder.requeue_fields(EXTERNAL), "attempts": record.attempts + 1}

    def requeued(self, record: JobRecord, fields: Fields) -> None:
        """The store took a retry's *fields*: tell who listens here."""
        self.tell(attrs.evolve(record, **fields).info())


def _started(record: JobRecord, now: float) -> Fields:
    """A CREATED external job's first report: it passes through RUNNING (one attempt at least)."""
    return {"state": _RUNNING, "started": now, "attempts": max(record.attempts, 1)}


def _ended(record: JobRecord, now: float, state: State) -> Fields:
    fields: Fields = {"state": state, "ended": now, "updated": now}
    if record.state is _CREATED:
        fields.update(started=now, attempts=max(record.attempts, 1))
    return fields
