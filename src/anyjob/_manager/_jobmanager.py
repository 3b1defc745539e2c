"""JobManager: the public API and the lifecycle; the work is done by the parts it assembles."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, NoReturn, Self, final

import anyio
import anyio.abc
import anyio.lowlevel

from anyjob._checkpoint import Checkpoint, checkpoint_function
from anyjob._events import EventStream
from anyjob._exceptions import JobError, ManagerClosedError
from anyjob._ids import new_id
from anyjob._job import _current_async_library
from anyjob._limits import (
    check_id,
    check_labels,
)
from anyjob._manager._control import Control
from anyjob._manager._entry import Entry
from anyjob._manager._external import Reports
from anyjob._manager._follower import Follower
from anyjob._manager._intake import id_in_use, new_record, new_records, queue, spec_for
from anyjob._manager._lifecycle import (
    Phase,
    check_concurrency,
    check_lease,
    interrupt_of,
    open_store,
    retain,
)
from anyjob._manager._outside import OutsideWork
from anyjob._manager._pool import WorkerPool
from anyjob._manager._publisher import Publisher
from anyjob._manager._queries import Queries
from anyjob._manager._queues import DelayedQueue, ReadyQueue
from anyjob._manager._recorder import Recorder
from anyjob._manager._sink import make_sink
from anyjob._manager._specs import JobFunction, SpecRegistry
from anyjob._manager._stats import ManagerStatistics, snapshot
from anyjob._manager._upkeep import Upkeep
from anyjob._manager._waiters import Waiters
from anyjob._records import JobRef
from anyjob._retry import Retry
from anyjob._signal import Signal
from anyjob._state import State
from anyjob._time import to_seconds
from anyjob.stores._base import Store
from anyjob.stores._memory import MemoryStore

__all__ = ["JobManager", "ManagerStatistics"]

_CREATED: Final = State.CREATED
_RUNNING: Final = State.RUNNING
_RETRYABLE: Final = frozenset({State.FAILED, State.CANCELED})
_NO_LABELS: Final = check_labels(None)


@final
class JobManager(Queries, OutsideWork):
    """Tracks many jobs by id: submit, status, wait, list, stats, cancel, retry, cleanup, events.

    Use it as an async context manager. Jobs run in worker tasks the manager
    owns, at most ``max_concurrency`` at a time, higher ``priority`` first and
    in submission order within one priority, each when its ``delay``/``at`` has
    come. Every change is written to the store (coalesced) and published to
    :meth:`events` subscribers. Every ``await`` of its methods is a checkpoint.

    Jobs start in the context (``contextvars``) the manager was entered in, not
    in the submitter's; context variables one job sets never reach another.

    Leaving the ``async with`` stops accepting submissions, lets running and due
    jobs finish within ``shutdown_timeout``, then cancels the rest and records
    them ``CANCELED``: no record is lost. A job that ignores its cancellation is
    waited for (structured concurrency leaves no other way): past twice
    ``shutdown_timeout`` an ``anyjob.shutdown_overdue`` warning names it, through
    the hooks, and leaving goes on waiting until it ends.

    Args:
        store: Where records are kept; a new :class:`~anyjob.stores.MemoryStore` by default.
            Several managers may share one store.
        max_concurrency: At most this many jobs execute at once (``None``: no limit).
        retention: Finished jobs are deleted automatically this long after they end.
        shutdown_timeout: How long leaving the context waits for jobs before canceling them.
        lease: Over a durable store, this manager holds a lease renewed in the database
            (on its clock) about every ``lease / 3`` seconds. When it stops being renewed
            (the process was killed, its machine lost), the other managers over the store
            resolve this manager's jobs within about one more ``lease``: executing ones
            end FAILED with ``JobLostError`` (those of functions registered
            ``resumable=True`` go back to CREATED and run again), waiting ones run
            elsewhere. A waiting job of a registered function that has been due for a
            whole ``lease`` may be started by another manager that registered it (a busy
            manager's backlog is shared).

    Raises:
        TypeError, ValueError: An invalid argument.
    """

    def __init__(
        self,
        store: Store | None = None,
        max_concurrency: int | None = None,
        retention: float | timedelta | None = None,
        shutdown_timeout: float | timedelta = 10.0,
        lease: float | timedelta = 30.0,
    ) -> None:
        if store is None:
            store = MemoryStore()
        elif not isinstance(store, Store):
            msg = f"store must implement anyjob.stores.Store, not {type(store).__name__}"
            raise TypeError(msg)
        check_concurrency(max_concurrency)
        self._store: Store = store
        self._retention = None if retention is None else to_seconds(retention, "retention")
        self._shutdown_timeout = to_seconds(shutdown_timeout, "shutdown_timeout", allow_inf=True)
        lease_seconds = check_lease(lease)
        self._origin = new_id()
        self._phase = Phase.NEW
        self._tg: anyio.abc.TaskGroup | None = None
        self._registry = SpecRegistry(self._origin)
        self._publisher = Publisher()
        self._waiters = Waiters()
        self._sink = make_sink(store, self._origin, self._refused)
        self._delayed = DelayedQueue()
        self._recorder = Recorder(
            self._origin,
            self._sink,
            publisher=self._publisher,
            waiters=self._waiters,
            delayed=self._delayed,
            drained=Signal(),
        )
        self._pool = WorkerPool(ReadyQueue(), self._recorder, self._sink, max_concurrency)
        self._follower = Follower(self._recorder, self._publisher, self._waiters)
        self._reports = Reports(self._origin, store, self._sink, self._publisher, self._waiters)
        self._upkeep = Upkeep(
            self._origin,
            store,
            durable=self._sink.claims,
            lease=lease_seconds,
            reports=self._reports,
            recorder=self._recorder,
            registry=self._registry,
            pool=self._pool,
        )
        self._control = Control(
            self._origin, store, self._sink, self._recorder, self._registry, self._waiters, self._reports
        )
        self._checkpoint: Checkpoint = anyio.lowlevel.checkpoint  # the backend's, once entered
        self._backend = ""  # the async library it runs on, once entered

    def __repr__(self) -> str:
        phase = self._phase.name.lower()
        return f"<JobManager {phase} jobs={len(self._recorder.entries)} store={self._store!r}>"

    @property
    def store(self) -> Store:
        """The store the records are kept in."""
        return self._store

    @property
    def max_concurrency(self) -> int | None:
        """At most this many jobs execute at once, or ``None``."""
        return self._pool.limit

    @property
    def is_open(self) -> bool:
        """True between entering and leaving the ``async with`` (submissions are accepted)."""
        return self._phase is Phase.OPEN

    def _statistics(self) -> ManagerStatistics:
        """A frozen snapshot of this manager's internals (for tests; not public API)."""
        return snapshot(
            phase=self._phase,
            recorder=self._recorder,
            pool=self._pool,
            delayed=self._delayed,
            waiters=self._waiters,
            publisher=self._publisher,
            registry=self._registry,
        )

    # -- lifecycle ----------------------------------------------------------------

    def _refuse(self, action: str, *, queries: bool = False) -> None:
        """Raise unless open (or, for *queries*, unless entered once)."""
        phase = self._phase
        if phase is Phase.OPEN or (queries and phase is not Phase.NEW):
            return
        msg = f"cannot {action}: {phase.value}"
        raise ManagerClosedError(msg)

    async def __aenter__(self) -> Self:
        if self._phase is not Phase.NEW:
            msg = "a JobManager can be entered only once"
            raise JobError(msg)
        feed = await open_store(self._store, self._origin)  # StoreError: nothing to unwind yet
        try:
            await self._upkeep.open()  # the lease, before any job
        except BaseException:
            feed.close()
            raise
        context = contextvars.copy_context()
        self._checkpoint = self._sink.checkpoint = self._pool.checkpoint = checkpoint_function()
        self._backend = _current_async_library()
        tg = anyio.create_task_group()
        await tg.__aenter__()  # nothing fails from here on: the group is always left in __aexit__
        self._tg = tg
        self._phase = Phase.OPEN
        self._pool.open(tg, context)
        tg.start_soon(self._sink.run)
        tg.start_soon(self._delayed.run, self._pool.push)
        tg.start_soon(self._follower.run, feed)
        tg.start_soon(self._upkeep.run)
        if self._retention is not None:
            tg.start_soon(retain, self._sink, self._store, self._retention)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg = self._tg
        assert tg is not None  # noqa: S101 - set by __aenter__
        self._phase = Phase.CLOSING
        self._upkeep.claiming = False
        since = anyio.current_time()
        try:
            if exc is None or isinstance(exc, Exception):
                await self._pool.drain(self._shutdown_timeout)  # delayed jobs not yet due do not count
            if self._sink.claims:
                self._recorder.leave_waiting()  # a durable store keeps them waiting, for any manager
            with anyio.CancelScope(shield=True):
                await self._recorder.cancel_all(self._shutdown_timeout, since)
        finally:
            self._phase = Phase.CLOSED
            self._pool.close()
            tg.cancel_scope.cancel()
            try:
                # The body's own exception (or cancellation) propagates as it is, not
                # wrapped in the internal task group's exception group.
                await tg.__aexit__(None, None, None)
            except BaseExceptionGroup as group:
                interrupt = interrupt_of(group, self._backend)
                if interrupt is None:
                    raise
                raise interrupt from None  # Ctrl-C reaches the script as KeyboardInterrupt
            finally:
                try:
                    with anyio.CancelScope(shield=True):
                        await self._sink.close()  # StoreError: the lease is kept, for others to resolve
                        await self._upkeep.close()
                finally:
                    self._publisher.end_all()  # whatever happened: no stream or waiter is left hanging
                    self._waiters.wake_all()
        return None

    async def _abandon(self, entry: Entry, action: str) -> NoReturn:
        """The manager closed while the store took *entry*: record it canceled, then refuse."""
        self._recorder.cancel_waiting(entry)
        with anyio.CancelScope(shield=True):
            await self._sink.close()  # the final flush has run already: this one writes it
        self._refuse(action)
        raise AssertionError  # pragma: no cover - _refuse raises when closed

    def _refused(self, entry: Entry) -> None:
        self._recorder.refused(entry)  # the sink is made before the recorder it reports to

    # -- registering and submitting ------------------------------------------------

    @property
    def registered(self) -> list[str]:
        """The names functions are registered under (what ``submit`` by name accepts), in order."""
        return self._registry.names

    def register(self, fn: JobFunction, name: str | None = None, *, resumable: bool = False) -> JobFunction:
        """Register ``async def fn(ctx)`` under *name* so jobs can be submitted by name.

        Needed for durable stores and for ``retry`` after a restart. Over a durable
        store, waiting jobs of a registered function may be started by any open
        manager that registered the same name (exactly one runs each), and leaving the
        ``async with`` leaves them waiting for one. Returns *fn*, so it also works as
        a decorator.

        Args:
            fn: The job function.
            name: The name to submit it by; by default its qualified name.
            resumable: When the manager running one of its jobs is lost (its lease
                ran out), the job goes back to CREATED and runs again (attempts kept),
                instead of ending FAILED with ``JobLostError``.

        Raises:
            TypeError: *fn* is not an ``async def fn(ctx)``, *name* is not a valid
                name, or *resumable* is not a bool.
            ValueError: Another function is registered under *name*.
        """
        self._registry.register(fn, name, resumable=resumable)
        return fn

    async def submit(
        self,
        fn: JobFunction | str,
        params: Any = None,
        *,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
        id: str | None = None,  # noqa: A002 - the contract's name
        priority: int = 0,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
        retry: Retry | int | None = None,
        timeout: float | timedelta | None = None,
    ) -> JobRef:
        """Accept a job and return its :class:`~anyjob.JobRef` at once.

        Args:
            fn: ``async def fn(ctx)`` (a Policy-decorated one runs with its policy), or
                the name it was registered under.
            params: JSON-safe data, copied; the function sees it as ``ctx.params``.
            name: The job's name; by default the registered name or ``fn.__qualname__``.
            labels: ``str -> str`` pairs to filter by.
            id: The job's id; by default a new UUIDv7 string.
            priority: Higher starts first among waiting jobs (FIFO within one priority).
            delay: Start no earlier than this long from now.
            at: Start no earlier than this timezone-aware time.
            retry: A :class:`~anyjob.Retry` or an int (attempts); runs through an Executor.
            timeout: Per-attempt timeout; runs through an Executor.

        Raises:
            ManagerClosedError: The manager is not open.
            JobError: A job with that id exists.
            TypeError, ValueError: Invalid arguments (see ``docs/limits.md``); nothing is stored.
        """
        if self._phase is not Phase.OPEN:
            self._refuse("submit")
        spec = spec_for(self._registry, fn, retry, timeout)
        record, wait = new_record(
            self._registry,
            spec,
            params,
            origin=self._origin,
            name=name,
            labels=labels,
            job_id=id,
            priority=priority,
            delay=delay,
            at=at,
        )
        if id is not None and (taken := id_in_use(record.id, self._recorder.entries, self._sink)):
            await self._checkpoint()  # still a checkpoint first: cancelled, that is what it raises
            raise taken
        await self._sink.insert(record)  # a checkpoint first: cancelled, nothing is stored
        entry = Entry(self._recorder, record, spec)
        self._recorder.add(entry)
        if self._phase is Phase.CLOSED:
            await self._abandon(entry, "submit")
        if wait > 0.0:
            self._delayed.push(entry, anyio.current_time() + wait)
        else:
            self._pool.push(entry)
        return JobRef(record.id, record.name, datetime.fromtimestamp(record.scheduled, UTC))

    async def submit_many(
        self,
        fn: JobFunction | str,
        params: Iterable[Any],
        *,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
        priority: int = 0,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
        retry: Retry | int | None = None,
        timeout: float | timedelta | None = None,
    ) -> list[JobRef]:
        """Accept one job per item of *params*, stored together; their refs, in order.

        As ``submit(fn, item, ...)`` for each item, with the same keyword arguments and
        new ids, queued in the order given; over a durable store all are written in one
        transaction, and it returns once that is committed. At most 10,000 jobs a call.

        Raises:
            ManagerClosedError: The manager is not open.
            TypeError, ValueError: An invalid argument, or item (named by its index),
                or too many items; nothing is stored.
        """
        if self._phase is not Phase.OPEN:
            self._refuse("submit")
        spec = spec_for(self._registry, fn, retry, timeout)
        records, wait = new_records(
            self._registry,
            spec,
            params,
            origin=self._origin,
            name=name,
            labels=labels,
            priority=priority,
            delay=delay,
            at=at,
        )
        await self._sink.insert_many(records)  # a checkpoint first: cancelled, nothing is stored
        entries = [Entry(self._recorder, record, spec) for record in records]
        for entry in entries:
            self._recorder.add(entry)
        if self._phase is Phase.CLOSED and entries:
            for entry in entries[:-1]:
                self._recorder.cancel_waiting(entry)
            await self._abandon(entries[-1], "submit")
        return queue(entries, wait, self._pool.push, self._delayed.push)

    # -- events ----------------------------------------------------------------------------

    def events(self, id: str | None = None) -> EventStream:  # noqa: A002 - the contract's name
        """Subscribe to state changes and progress of one job (*id*) or of all.

        The subscription starts now. Iterate with ``async for``; the iterator
        ends when the manager closes. Events of one job arrive in order; a slow
        consumer never blocks the jobs (progress is coalesced for it).

        Raises:
            ManagerClosedError: The manager is not open.
            TypeError, ValueError: *id* is not a valid id.
        """
        if id is not None:
            check_id(id)
        self._refuse("subscribe to events")
        return self._publisher.subscribe(id)

    # -- control ---------------------------------------------------------------------------------

    async def cancel(self, id: str) -> bool:  # noqa: A002
        """Cancel a job: a waiting one becomes ``CANCELED`` at once, an executing one ``CANCELING``.

        Works for jobs run by another manager sharing the store, with the same answer.

        Returns:
            False when the job was already done (or already canceling).

        Raises:
            ManagerClosedError: The manager is not open.
            JobNotFoundError: No job has that id.
        """
        check_id(id)
        self._refuse("cancel a job")
        return await self._control.cancel(id)

    async def retry(self, id: str) -> JobRef:  # noqa: A002
        """Queue a ``FAILED`` or ``CANCELED`` job again under the same id.

        It runs under this manager, with the same function and policies;
        ``attempts`` grows with each try.

        Raises:
            ManagerClosedError: The manager is not open.
            JobNotFoundError: No job has that id.
            JobStateError: The job is not failed or canceled.
            JobError: Its function is unknown here (register it by name to retry
                jobs from another process).
        """
        check_id(id)
        self._refuse("retry a job")
        ref, entry = await self._control.retry(id)
        if entry is None:  # an external job: waiting for its reporter, not for a worker
            return ref
        if self._phase is Phase.CLOSED:
            await self._abandon(entry, "retry a job")
        self._pool.push(entry)
        return ref

    async def delete(self, id: str) -> None:  # noqa: A002
        """Delete one finished job (of any manager sharing the store).

        Raises:
            ManagerClosedError: The manager is not open.
            JobNotFoundError: No job has that id.
            JobStateError: The job is not done (cancel it first).
        """
        check_id(id)
        self._refuse("delete a job")
        await self._control.delete(id)

    async def cleanup(self, older_than: float | timedelta) -> int:
        """Delete finished jobs that ended before ``now - older_than``; returns how many.

        With ``retention`` set this happens automatically.

        Raises:
            ManagerClosedError: The manager is not open.
        """
        seconds = to_seconds(older_than, "older_than")
        self._refuse("clean up jobs")
        await self._sink.settle()
        return await self._store.delete_finished(time.time() - seconds)
