"""The recorder: the only writer of record state, and the one place a live job is retired."""

from __future__ import annotations

import functools
from typing import Any, Final, final

import anyio
import attrs

from anyjob._error_text import error_type_of, traceback_text
from anyjob._job import Context, Job, error_text
from anyjob._manager._entry import Entry, Worker
from anyjob._manager._publisher import Publisher
from anyjob._manager._queues import DelayedQueue
from anyjob._manager._sink import Sink
from anyjob._manager._specs import Spec
from anyjob._manager._waiters import Waiters
from anyjob._records import JobInfo, JobRecord, check_json_safe
from anyjob._records import now_timestamp as _now
from anyjob._signal import Signal
from anyjob._state import State
from anyjob.instrumentation import _hooks

__all__ = ["Recorder"]

_CREATED: Final = State.CREATED
_RUNNING: Final = State.RUNNING
_CANCELING: Final = State.CANCELING
_SUCCEEDED: Final = State.SUCCEEDED
_FAILED: Final = State.FAILED
_CANCELED: Final = State.CANCELED
_END_EVENTS: Final = {
    _SUCCEEDED: _hooks.JOB_SUCCEEDED,
    _FAILED: _hooks.JOB_FAILED,
    _CANCELED: _hooks.JOB_CANCELED,
}


def _become(record: JobRecord, new: State) -> None:
    """Move *record* to *new*, if :class:`~anyjob.State`'s record table allows it."""
    if not record.state.can_become(new, record=True):
        msg = f"job {record.id!r}: {record.state.value} -> {new.value} is not a transition records make"
        raise AssertionError(msg)
    record.state = new


def _unstorable(error: TypeError | ValueError) -> Exception:
    """The error a job ends with when its result cannot be stored (of the same type as *error*)."""
    failure = type(error)(f"the job's result could not be stored: {error}")
    failure.__cause__ = error
    return failure


_CONTAINERS: Final = (list, dict)


def _detached_info(record: JobRecord) -> JobInfo:
    """A snapshot of *record* sharing no list or dict with it (waiters may keep it)."""
    info = record.info()
    params: Any = info.params
    result: Any = info.result
    if type(params) in _CONTAINERS or type(result) in _CONTAINERS:
        info = attrs.evolve(
            info,
            params=check_json_safe(params, "params"),
            result=check_json_safe(result, "result"),
        )
    return info


@final
class Recorder:
    """The live jobs of one manager, and every change to their records.

    Nothing else writes ``JobRecord.state`` (or the fields that go with it) of a live
    job, and every state change is checked against the record transition table. Each
    change goes on to the sink (the store), the publisher (events) and, when a job
    leaves, the waiters, the ``drained`` signal and the hooks: all in :meth:`retire`.
    Invariant: ``entries[id].record.state`` is CREATED, RUNNING or CANCELING.
    """

    __slots__ = ("_delayed", "_publisher", "_sink", "_waiters", "drained", "entries", "origin", "tracked")

    def __init__(
        self,
        origin: str,
        sink: Sink,
        *,
        publisher: Publisher,
        waiters: Waiters,
        delayed: DelayedQueue,
        drained: Signal,
    ) -> None:
        self.entries: dict[str, Entry] = {}
        #: How many of the entries are tracked blocks running in their callers' tasks.
        self.tracked = 0
        #: The manager's id: the ``owner`` of the records it runs.
        self.origin = origin
        self._sink = sink
        self._publisher = publisher
        self._waiters = waiters
        self._delayed = delayed
        #: Fired whenever a live job leaves (and by the pool when a worker finds no work).
        self.drained = drained

    def refused(self, entry: Entry) -> None:
        """The store refused a write of *entry*: another manager canceled the job while it waited."""
        entry.flushed_state = _CANCELED
        if self.entries.get(entry.record.id) is not entry:
            return
        if entry.record.state is _CREATED:
            self.canceled_elsewhere(entry)
        else:
            self.cancel(entry)  # it started here meanwhile: stop it

    def add(self, entry: Entry) -> None:
        """A new job, already in the store."""
        self.entries[entry.record.id] = entry
        if self._publisher.streams:
            self._publisher.record(entry.record, progress=False)

    @staticmethod
    def requeue_fields(origin: str) -> dict[str, Any]:
        """What ``retry`` writes to a FAILED or CANCELED record: CREATED again, owned by *origin*.

        ``updated`` is the retry's time: ``updated_at`` never goes back.
        """
        now = _now()
        return {
            "state": _CREATED,
            "progress": 0.0,
            "message": None,
            "result": None,
            "error": None,
            "error_type": None,
            "traceback": None,
            "updated": now,
            "started": None,
            "ended": None,
            "scheduled": now,
            "owner": origin,
            "cancel_requested": False,
        }

    def requeued(self, record: JobRecord, spec: Spec, fields: dict[str, Any]) -> Entry:
        """The store took *fields* (a retry): *record* is live again; returns its entry."""
        if record.state is not _CREATED:  # a copy: mirror the store (the store's own has them)
            if not record.state.can_become(_CREATED, record=True):
                msg = f"job {record.id!r}: {record.state.value} -> created is not a transition records make"
                raise AssertionError(msg)
            for key, value in fields.items():
                setattr(record, key, value)
        entry = Entry(self, record, spec)
        self.add(entry)
        return entry

    # -- jobs run in place -----------------------------------------------------------

    def start(self, entry: Entry, worker: Worker) -> Context:
        """A worker starts *entry*'s function itself; returns the context to call it with."""
        record = entry.record
        _become(record, _RUNNING)
        entry.worker = worker
        entry._live_run = 1
        record.attempts += 1
        record.started = _now()
        self._sink.started(entry)
        if self._publisher.streams:
            self._publisher.record(record, progress=False)
        if _hooks.active and _hooks.wanted(_hooks.JOB_STARTED):
            self._emit(entry, _hooks.JOB_STARTED, None, None)
        return Context(entry, 1)

    def end(self, entry: Entry, state: State, error: BaseException | None, value: Any) -> None:
        """The function of *entry*, run in place, returned *value* or raised *error*."""
        record = entry.record
        entry._live_run = 0
        entry.worker = None
        if entry.cancel_requested or record.cancel_requested:
            state = _CANCELED  # a cancel request, here or stored, wins over how the function ended
        elif state is _SUCCEEDED:
            if value is None:
                value = entry._result
            if value is not None:
                try:
                    record.result = check_json_safe(value, "the job's result")
                except (TypeError, ValueError) as exc:
                    state = _FAILED
                    error = _unstorable(exc)
        if error is not None:
            record.error = error_text(error)
            record.error_type = error_type_of(error)
            record.traceback = traceback_text(error)
        record.ended = _now()
        _become(record, state)
        self.retire(entry, error, emit=True)

    def progress(self, entry: Entry, progress: float, message: str | None) -> None:
        """A validated progress report of a job run in place."""
        record = entry.record
        record.progress = progress
        if message is not None:
            record.message = message
        record.updated = _now()
        self._sink.changed(entry)
        if self._publisher.streams:
            self._publisher.record(record, progress=True)

    # -- jobs run through an Executor ------------------------------------------------

    def job_changed(self, entry: Entry, job: Job[Any]) -> None:
        """The Job an Executor runs for *entry* changed state or reported progress."""
        executor = entry.executor
        if entry.job is not job or executor is None:
            return
        record = entry.record
        state = job.state
        attempts = entry.attempts_before + executor.attempts
        if state is entry.job_state:
            if attempts != record.attempts:
                record.attempts = attempts  # the next attempt began (the job stays RUNNING)
                self._sink.changed(entry)
                return
            record.progress = job.progress
            record.message = job.message
            record.updated = _now()
            self._sink.changed(entry)
            if self._publisher.streams:
                self._publisher.record(record, progress=True)
            return
        entry.job_state = state
        if state is _RUNNING and record.state is _CREATED:
            _become(record, _RUNNING)
            record.attempts = max(attempts, entry.attempts_before + 1)
            record.started = _now()
            record.progress = 0.0
            record.message = None
            self._sink.changed(entry)
            if self._publisher.streams:
                self._publisher.record(record, progress=False)
        elif state is _CANCELING and record.state is _RUNNING:
            self._canceling(entry)
        # The end of the run (with all its attempts) is recorded in finish().

    def finish(self, entry: Entry, job: Job[Any]) -> None:
        """The Executor's run of *entry* is over, with all its attempts."""
        record = entry.record
        state = job.state
        error = job.error
        if record.state is _CANCELING or entry.cancel_requested or record.cancel_requested:
            state = _CANCELED
        elif state is _CREATED:
            state = _CANCELED  # never started (the manager closed first)
        elif state is _SUCCEEDED:
            try:
                record.result = check_json_safe(job.result, "the job's result")
            except (TypeError, ValueError) as exc:
                state = _FAILED
                error = _unstorable(exc)
        if error is not None:
            record.error = error_text(error)
            record.error_type = error_type_of(error)
            record.traceback = traceback_text(error)
        if record.state is not _CREATED:
            record.progress = job.progress
            record.message = job.message
            if entry.executor is not None:
                record.attempts = max(record.attempts, entry.attempts_before + entry.executor.attempts)
        record.ended = _now()
        _become(record, state)
        entry.job = None
        entry.executor = None
        self.retire(entry, error, emit=False)  # the Job emitted its own hook events

    # -- canceling --------------------------------------------------------------------

    def cancel(self, entry: Entry) -> bool:
        """Cancel a live job; False when it is already canceling (asked here or in the store).

        Over records shared with other managers (one MemoryStore), a job another manager
        took over before this one heard is not this one's to cancel: it leaves (False).
        """
        record = entry.record
        if record.owner != self.origin:
            self.taken_elsewhere(entry)
            return False
        if record.state is _CREATED:
            self.cancel_waiting(entry)
            return True
        if record.state is not _RUNNING:
            return False
        asked = record.cancel_requested  # by another manager, in the store we share the record of
        entry.cancel_requested = True
        entry.stop()
        if record.state is _RUNNING:  # stopping an Executor's job may have said so already
            self._canceling(entry)
        return not asked

    def cancel_stored(self, entry: Entry, before: State) -> None:
        """The store took a cancel of *entry*'s job; it was *before* (the store's state) then.

        CREATED: the store has it CANCELED now. RUNNING: the request is stored, this
        manager stops it. Anything else: another manager canceled it first, this one
        follows (a waiting job leaves, a running one is stopped).
        """
        record = entry.record
        record.cancel_requested = True  # a copy: mirror the store
        if record.state is not _CREATED:
            self.cancel(entry)
        elif before is _CREATED:
            self._retire_as_stored(entry)  # canceled by this call: no canceled_elsewhere event
        else:
            self.canceled_elsewhere(entry)

    def _canceling(self, entry: Entry) -> None:
        _become(entry.record, _CANCELING)
        self._sink.changed(entry)
        if self._publisher.streams:
            self._publisher.record(entry.record, progress=False)

    def cancel_waiting(self, entry: Entry) -> None:
        """A job that has not started is canceled (here, or the store refused its start)."""
        record = entry.record
        _become(record, _CANCELED)
        record.ended = _now()
        self.retire(entry, None, emit=False)

    def canceled_elsewhere(self, entry: Entry) -> None:
        """Another manager canceled this waiting job: the store says CANCELED already."""
        if self.entries.get(entry.record.id) is not entry:
            return
        self._retire_as_stored(entry)
        if _hooks.active and _hooks.wanted(_hooks.CANCELED_ELSEWHERE):
            self._emit(entry, _hooks.CANCELED_ELSEWHERE, None, None)

    def _retire_as_stored(self, entry: Entry) -> None:
        """The store has this waiting job CANCELED already: mirror that, retire it, write nothing."""
        record = entry.record
        if record.state is _CREATED:  # a local copy (not the store's own record)
            _become(record, _CANCELED)
            record.ended = _now()
        entry.flushed_state = record.state
        self.retire(entry, None, emit=False, write=False)

    def claim_refused(self, entry: Entry, stored: JobRecord | None) -> None:
        """The store refused this manager's claim of *entry*; *stored* is its record there now."""
        if self.entries.get(entry.record.id) is not entry or entry.record.state is not _CREATED:
            return  # canceled here meanwhile
        if stored is None or stored.owner == self.origin:
            self.canceled_elsewhere(entry)
            return
        self.taken_elsewhere(entry)
        if stored.state.is_done:  # it ran to its end there already: who waits here learns it
            info = stored.info()
            if self._publisher.streams:
                self._publisher.info(info)
            self._waiters.wake(stored.id, info)

    def leave_waiting(self) -> None:
        """Closing over a durable store: waiting jobs of registered functions stay waiting there.

        For any manager that registered them (this one after a restart too). They leave
        this manager without a write: their records stay CREATED.
        """
        for entry in list(self.entries.values()):
            if entry.record.state is _CREATED and entry.spec.registered:
                self.taken_elsewhere(entry)

    def taken_elsewhere(self, entry: Entry) -> None:
        """Another manager canceled this waiting job and retried it: the job is that one's now.

        The record (the store's own, shared) is left as it is: nothing is written,
        published or woken here, since the job is not done (the feed tells the rest).
        """
        if self.entries.get(entry.record.id) is not entry:
            return
        del self.entries[entry.record.id]
        if entry.due is not None:
            self._delayed.discard(entry)
        self.drained.fire()

    # -- leaving --------------------------------------------------------------------------

    def retire(self, entry: Entry, error: BaseException | None, *, emit: bool, write: bool = True) -> None:
        """The job is done here: the only place a live job leaves the manager."""
        record = entry.record
        del self.entries[record.id]
        if entry.due is not None:
            self._delayed.discard(entry)  # canceled while it waited for its time
        if write:
            self._sink.changed(entry)
        if write and self._sink.claims:  # a durable store: the end is told once it is committed
            self._sink.after_write(entry, functools.partial(self._told, record))
        else:
            self._told(record)
        self.drained.fire()
        if emit and _hooks.active:
            name = _END_EVENTS[record.state]
            if _hooks.wanted(name):  # e.g. not a debug event while structlog is unconfigured
                started = record.started
                ended = record.ended
                duration = None if started is None or ended is None else max(ended - started, 0.0)
                self._emit(entry, name, error, duration)

    def _told(self, record: JobRecord) -> None:
        """A retired job's end reaches the events and who waits for it (once it is stored)."""
        if self._publisher.streams:
            self._publisher.record(record, progress=False)
        by_id = self._waiters.by_id
        if by_id and record.id in by_id:  # an info only for a job somebody waits for
            self._waiters.wake(record.id, _detached_info(record))

    @staticmethod
    def _emit(entry: Entry, name: str, error: BaseException | None, duration: float | None) -> None:
        """Hand a *name* event to the hooks (the caller asked ``_hooks.wanted(name)``)."""
        record = entry.record
        _hooks.emit_job_event(name, record.id, record.name, record.labels, record.state, error, duration)

    async def cancel_all(self, timeout: float, since: float) -> None:
        """Cancel every live job and wait until each has ended (the manager is closing).

        A job ignoring its cancellation is waited for (structured concurrency leaves no
        other way), never silently: past *timeout* more, a ``shutdown_overdue`` warning
        names it through the hooks (its duration: seconds since *since*, when the manager
        began closing, on the loop clock).
        """
        for entry in list(self.entries.values()):
            self.cancel(entry)
        with anyio.move_on_after(timeout):
            await self._all_done()
        if self.entries:
            if _hooks.active and _hooks.wanted(_hooks.SHUTDOWN_OVERDUE):
                for entry in list(self.entries.values()):
                    self._emit(entry, _hooks.SHUTDOWN_OVERDUE, None, anyio.current_time() - since)
            await self._all_done()

    async def _all_done(self) -> None:
        while self.entries:
            await self.drained.wait()
