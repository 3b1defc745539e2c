"""Sinks: how a manager's record changes reach its store, chosen once when the manager is built.

* :class:`MemorySink` writes in place: over a :class:`~anyjob.stores.MemoryStore` the
  manager's records are the store's own objects, re-indexed as they change.
* :class:`BatchSink` works through the :class:`~anyjob.stores.Store` protocol alone:
  changes are coalesced per job and written in batches, and a worker claims a job
  before it starts it: one atomic write, CREATED to RUNNING, only while the job is
  still this manager's (another manager may have canceled it, or retried it too).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, Protocol, final

import anyio
import anyio.lowlevel
import attrs

from anyjob._checkpoint import Checkpoint
from anyjob._exceptions import StoreError
from anyjob._manager._entry import Entry
from anyjob._records import JobInfo, JobRecord, now_timestamp
from anyjob._signal import Signal
from anyjob._state import State
from anyjob.stores._base import RecordUpdate, Store
from anyjob.stores._memory import MemoryStore
from anyjob.stores._outage import backoff

__all__ = ["BatchSink", "MemorySink", "Sink", "make_sink"]

#: Seconds a closing manager waits for the database to take its last changes (then the
#: StoreError is raised; the jobs whose ends were not written are resolved as any lost
#: manager's, once its lease runs out).
CLOSE_PATIENCE: Final = 10.0
_CLAIMABLE: Final = frozenset({State.CREATED})
_LIVE: Final = frozenset({State.CREATED, State.RUNNING, State.CANCELING})
_RUNNING: Final = State.RUNNING
_RUN_FIELDS: Final = (
    "state",
    "progress",
    "message",
    "result",
    "error",
    "error_type",
    "attempts",
    "started",
    "ended",
    "updated",
    "traceback",
)


class Sink(Protocol):
    """The one small interface between the recorder and the store."""

    #: Whether a worker must :meth:`claim` a job before starting it.
    claims: bool
    #: Whether :meth:`get` reads right after its checkpoint, with no other await.
    reads_now: bool

    def __len__(self) -> int:
        """How many jobs have changes not yet in the store."""
        ...

    def busy(self, job_id: str) -> bool:
        """Whether an insert or requeue of *job_id* is on its way (refuse another meanwhile)."""
        ...

    async def insert(self, record: JobRecord) -> None:
        """Store a new record (a checkpoint first: cancelled, nothing is stored)."""
        ...

    async def insert_many(self, records: Sequence[JobRecord]) -> None:
        """Store new records, all or none (a checkpoint first, even for none)."""
        ...

    def started(self, entry: Entry) -> None:
        """*entry* just started (it may end before it yields: the write may wait)."""
        ...

    def changed(self, entry: Entry) -> None:
        """*entry*'s record changed."""
        ...

    def after_write(self, entry: Entry, tell: Callable[[], None]) -> None:
        """Call *tell* once *entry*'s changes so far are in the store (at once if they are).

        For a job's end: who waits for it, and the events, learn it only once it is stored.
        """
        ...

    async def claim(self, entry: Entry) -> bool:
        """Take *entry*'s job for this manager if it still waits in the store."""
        ...

    async def settle(self) -> None:
        """A checkpoint after which the store holds every change made before the call."""
        ...

    async def get(self, job_id: str) -> JobInfo | None:
        """Read your writes: :meth:`settle`, then the store's info for *job_id*."""
        ...

    async def get_many(self, job_ids: Sequence[str]) -> list[JobInfo | None]:
        """:meth:`get` for each of *job_ids*, in order."""
        ...

    @property
    def get_now(self) -> Callable[[str], JobInfo | None] | None:
        """The store's info for a job id, read without an await (after :meth:`settle`).

        ``None`` for a sink that must await its reads (without :attr:`reads_now`).
        """
        ...

    async def record(self, job_id: str) -> JobRecord | None:
        """The record to retry: the store's own (in place) or a copy."""
        ...

    async def requeue(self, job_id: str, fields: dict[str, Any], expect: frozenset[State]) -> bool:
        """Write a retry's fields if the record is still in *expect*; whether it was."""
        ...

    async def run(self) -> None:
        """The sink's background work while the manager is open (runs until cancelled)."""
        ...

    async def close(self) -> None:
        """Write what is still pending (the manager is closing)."""
        ...


@final
class MemorySink:
    """In place over a :class:`~anyjob.stores.MemoryStore`: the records are the store's."""

    __slots__ = ("_origin", "_store", "checkpoint")

    claims = False
    reads_now = True

    def __init__(self, store: MemoryStore, origin: str) -> None:
        self._store = store
        self._origin = origin
        #: The running backend's checkpoint, set when the manager is entered.
        self.checkpoint: Checkpoint = anyio.lowlevel.checkpoint

    def __len__(self) -> int:
        return 0  # every change is in the store as it happens

    def busy(self, job_id: str) -> bool:  # noqa: ARG002 - the protocol's signature
        return False  # an insert is in the store once its checkpoint passed; the store refuses a requeue

    async def insert(self, record: JobRecord) -> None:
        await self.checkpoint()
        self._store.insert_now(record)  # the store and the entry share this record

    async def insert_many(self, records: Sequence[JobRecord]) -> None:
        await self.checkpoint()
        self._store.insert_many_now(records)  # shared, as insert's

    def started(self, entry: Entry) -> None:
        # Put off: a job that ends before it yields moves once, CREATED -> its end.
        record = entry.record
        self._store.reindex_later(record, entry.flushed_state)
        entry.flushed_state = record.state
        self._store.notify(record, self._origin)

    def changed(self, entry: Entry) -> None:
        record = entry.record
        if record.state is not entry.flushed_state:
            self._store.reindex(record, entry.flushed_state)
            entry.flushed_state = record.state
        self._store.notify(record, self._origin)

    def after_write(self, entry: Entry, tell: Callable[[], None]) -> None:  # noqa: ARG002 - the protocol's
        tell()  # pragma: no cover - the recorder asks only a sink that claims (the changes are stored)

    async def claim(self, entry: Entry) -> bool:  # noqa: ARG002 - the shared record already tells
        return True  # pragma: no cover - claims is False: never called

    async def settle(self) -> None:
        await self.checkpoint()

    async def get(self, job_id: str) -> JobInfo | None:
        await self.checkpoint()
        return self._store.get_now(job_id)

    async def get_many(self, job_ids: Sequence[str]) -> list[JobInfo | None]:
        await self.checkpoint()
        get_now = self._store.get_now
        return [get_now(job_id) for job_id in job_ids]

    def get_now(self, job_id: str) -> JobInfo | None:
        return self._store.get_now(job_id)

    async def record(self, job_id: str) -> JobRecord | None:
        await self.checkpoint()
        return self._store.record_now(job_id)

    async def requeue(self, job_id: str, fields: dict[str, Any], expect: frozenset[State]) -> bool:
        applied = await self._store.apply([RecordUpdate(job_id, fields, expect)], origin=self._origin)
        return applied[0]

    async def run(self) -> None:
        return  # nothing in the background: every change is written as it happens

    async def close(self) -> None:
        return  # nothing pending


@final
class _ClaimGroup:
    """The workers' claims for one batch, answered together (group commit).

    A claim withdrawn (its worker cancelled) before the batch is taken is ``None``.
    """

    __slots__ = ("done", "error", "results", "updates")

    def __init__(self) -> None:
        self.updates: list[RecordUpdate | None] = []
        self.results: list[bool] | None = None
        self.error: StoreError | None = None
        self.done = Signal()  # fired once, when answered

    def answer(self, claims: list[RecordUpdate], applied: list[bool]) -> None:
        """The batch is committed: whether each claim applied, by its place in ``updates``."""
        by_update = dict(zip(map(id, claims), applied, strict=True))
        self.results = [update is not None and by_update[id(update)] for update in self.updates]
        self.done.fire()

    def fail(self, error: StoreError) -> None:
        """The batch was not written: every claimer tries again on its own."""
        self.error = error
        self.done.fire()


@final
class BatchSink:
    """Through the Store protocol: changes coalesced per job, written in batches in order.

    ``_dirty`` holds the entries whose changes are not yet written; ``_lock`` is held
    while a batch is on its way, so :meth:`settle` returns only once earlier changes are
    stored (read your writes). ``_creating`` holds the ids an insert or requeue is writing
    now: while one is, the manager refuses another for that id, so that a cancelled one
    withdraws only what it may have written itself. ``_tells`` holds what to tell once an
    entry's pending changes are committed (a job's end: its waiters, its event), so nothing
    is reported that is not stored; the many jobs ending meanwhile go in one transaction.

    While the database is away, the pending changes stay in ``_dirty`` and :meth:`run`
    writes them again with backoff until it answers; what is to be told waits with them.
    That buffer is bounded by the jobs this manager held when the database went away: one
    coalesced change per job (its latest record), however often it changes, and no job
    joins it meanwhile (a submit, retry, create or track needs the database and raises
    StoreError; a waiting job is claimed with backoff, so its worker waits for the
    database instead of starting it).
    """

    __slots__ = (
        "_claims",
        "_creating",
        "_dirty",
        "_insert_many",
        "_lock",
        "_origin",
        "_refused",
        "_store",
        "_tells",
        "_wakeup",
        "checkpoint",
    )

    claims = True
    reads_now = False
    get_now: None = None

    def __init__(self, store: Store, origin: str, refused: Callable[[Entry], None]) -> None:
        self._store = store
        self._origin = origin
        self._refused = refused  # called for an entry whose write the store refused
        self._dirty: dict[str, Entry] = {}
        self._tells: dict[str, list[Callable[[], None]]] = {}
        self._creating: set[str] = set()
        self._claims = _ClaimGroup()  # the claims for the next batch
        self._wakeup = Signal()
        self._lock: anyio.Lock | None = None
        self.checkpoint: Checkpoint = anyio.lowlevel.checkpoint
        #: The store's ``insert_many`` (one transaction), or None: then one insert per record.
        self._insert_many: Callable[[list[JobRecord]], Awaitable[None]] | None = getattr(
            store, "insert_many", None
        )

    def __len__(self) -> int:
        return len(self._dirty)

    def busy(self, job_id: str) -> bool:
        return job_id in self._creating

    async def insert(self, record: JobRecord) -> None:
        await self.insert_many((record,))

    async def insert_many(self, records: Sequence[JobRecord]) -> None:
        """One store call for several records (a store without ``insert_many``: one each).

        Cancelled, what may have been written is withdrawn; one by one, those stored
        before an insert that failed are withdrawn too (recorded CANCELED).
        """
        if not records:
            await self.checkpoint()
            return
        ids = [record.id for record in records]
        self._creating.update(ids)
        copies = [attrs.evolve(record) for record in records]  # the store keeps its own copies
        many = self._insert_many if len(copies) > 1 else None
        written = 0
        try:
            if many is not None:
                await many(copies)
            else:
                for copy in copies:
                    await self._store.insert(copy)
                    written += 1
        except anyio.get_cancelled_exc_class():
            await self._withdraw(ids if many is not None else ids[: written + 1])
            raise
        except BaseException:
            if written:
                await self._withdraw(ids[:written])
            raise
        finally:
            self._creating.difference_update(ids)

    async def _withdraw(self, job_ids: Sequence[str]) -> None:
        """The caller was cancelled while the store wrote *job_ids* CREATED (insert, requeue).

        Whether the write happened is unknown: if it did, each job is recorded CANCELED
        (nobody would run it); shielded, and only while it is still this manager's and
        waiting, so no other manager's record is touched. No other write of this manager
        made one of them CREATED meanwhile (:meth:`busy` refused it), so none of its own either.
        """
        fields = {"state": State.CANCELED, "ended": now_timestamp(), "cancel_requested": True}
        updates = [RecordUpdate(job_id, fields, _CLAIMABLE, owner=self._origin) for job_id in job_ids]
        with anyio.CancelScope(shield=True), contextlib.suppress(StoreError):
            await self._store.apply(updates, origin=self._origin)

    def started(self, entry: Entry) -> None:
        self.changed(entry)

    def changed(self, entry: Entry) -> None:
        if not self._dirty:
            self._wakeup.fire()
        self._dirty[entry.record.id] = entry

    def after_write(self, entry: Entry, tell: Callable[[], None]) -> None:
        job_id = entry.record.id
        if job_id not in self._dirty:
            tell()  # nothing of it pending
            return
        tells = self._tells.get(job_id)
        if tells is None:
            self._tells[job_id] = [tell]
        else:
            tells.append(tell)

    async def claim(self, entry: Entry) -> bool:
        # The write that starts the job in the store: only while it still waits and is still
        # this manager's (not canceled, nor canceled and retried by another manager, which
        # makes it that one's). From then on another manager's cancel asks this one to stop
        # it, and nobody can retry it until it ended. Group commit: the claims of every
        # worker meanwhile go in the next batch, with the ends and other changes pending.
        record = entry.record
        fields = {"state": _RUNNING, "started": now_timestamp(), "attempts": record.attempts + 1}
        update = RecordUpdate(record.id, fields, _CLAIMABLE, owner=self._origin)
        group = self._claims
        index = len(group.updates)
        group.updates.append(update)
        self._wakeup.fire()
        try:
            await group.done.wait()
        except BaseException:
            if group is self._claims:
                group.updates[index] = None  # not taken yet: withdrawn, nothing written
            raise
        claimed: bool
        if group.results is not None:
            claimed = group.results[index]
        else:  # the database away (or its answer lost): this worker waits for it
            claimed = await backoff()(self._claim_again, update)
        if claimed:
            entry.flushed_state = _RUNNING
        return claimed

    async def _claim_again(self, update: RecordUpdate) -> bool:
        """A claim whose earlier try failed: taken already if the store holds that very start.

        (The earlier try may have been committed though its answer was lost.)
        """
        stored = await self._store.get_record(update.job_id)
        if (
            stored is not None
            and stored.state is _RUNNING
            and stored.owner == self._origin
            and stored.started == update.fields["started"]
        ):
            return True
        return (await self._store.apply([update], origin=self._origin))[0]

    async def settle(self) -> None:
        lock = self._lock
        if not self._dirty and not self._claims.updates and (lock is None or not lock.locked()):
            await self.checkpoint()
            return
        await self.flush()

    async def get(self, job_id: str) -> JobInfo | None:
        await self.settle()
        return await self._store.get(job_id)

    async def get_many(self, job_ids: Sequence[str]) -> list[JobInfo | None]:
        await self.settle()
        get = self._store.get
        return [await get(job_id) for job_id in job_ids]

    async def record(self, job_id: str) -> JobRecord | None:
        await self.settle()
        return await self._store.get_record(job_id)

    async def requeue(self, job_id: str, fields: dict[str, Any], expect: frozenset[State]) -> bool:
        self._creating.add(job_id)
        try:
            applied = await self._store.apply([RecordUpdate(job_id, fields, expect)], origin=self._origin)
        except anyio.get_cancelled_exc_class():
            await self._withdraw([job_id])
            raise
        finally:
            self._creating.discard(job_id)
        return applied[0]

    async def flush(self) -> None:
        """Write every pending claim and change to the store, in order, as one batch."""
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            group = self._claims
            if not self._dirty and not group.updates:
                return
            self._claims = _ClaimGroup()
            claims = [update for update in group.updates if update is not None]
            entries = list(self._dirty.values())
            self._dirty = {}
            tells = self._tells
            self._tells = {}
            updates: list[RecordUpdate] = []
            for entry in entries:
                record = entry.record
                fields = {name: getattr(record, name) for name in _RUN_FIELDS}
                # Any state this manager's job may be in there (a claim may have made it
                # RUNNING meanwhile); another manager's cancel ends it, its retry owns it.
                updates.append(RecordUpdate(record.id, fields, _LIVE, owner=self._origin))
            # Shielded: the batch is out of _dirty now, and a canceled write would lose it.
            applied: list[bool] = []
            with anyio.CancelScope(shield=True):
                try:
                    if claims or updates:  # (every claim may have been withdrawn)
                        applied = await self._store.apply(claims + updates, origin=self._origin)
                except StoreError as exc:
                    # Not written: again with the next batch, before anything changed since
                    # (kept in the order of the first change of each job), told with it.
                    self._dirty = {entry.record.id: entry for entry in entries} | self._dirty
                    for job_id, waiting in self._tells.items():
                        tells.setdefault(job_id, []).extend(waiting)
                    self._tells = tells
                    group.fail(exc)  # each claimer tries again on its own, with backoff
                    raise
            group.answer(claims, applied[: len(claims)])
            await self._written(entries, updates, applied[len(claims) :], tells)

    async def _written(
        self,
        entries: list[Entry],
        updates: list[RecordUpdate],
        applied: list[bool],
        tells: dict[str, list[Callable[[], None]]],
    ) -> None:
        """A batch is committed: tell what waited for it; the refused go to the manager."""
        unsure: list[tuple[Entry, list[Callable[[], None]]]] = []
        for entry, update, ok in zip(entries, updates, applied, strict=True):
            entry.flushed_state = update.fields["state"]
            job_tells = tells.pop(entry.record.id, [])
            if not ok:
                self._refused(entry)
                if job_tells:
                    unsure.append((entry, job_tells))
                continue
            for tell in job_tells:
                tell()
        if unsure:
            with anyio.CancelScope(shield=True):
                await self._tell_stored(unsure)

    async def _tell_stored(self, unsure: list[tuple[Entry, list[Callable[[], None]]]]) -> None:
        """Ends the store refused: told only if the store holds them all the same.

        So when an earlier try of this batch was committed though its answer was lost (the
        connection dropped as it committed); any other end there is another manager's, told
        by the feed.
        """
        for entry, job_tells in unsure:
            record = entry.record
            try:
                stored = await self._store.get_record(record.id)
            except StoreError:  # the database away again: read again, with backoff, a while
                try:
                    stored = await backoff(CLOSE_PATIENCE)(self._store.get_record, record.id)
                except StoreError:
                    continue  # still unreadable: its waiters read the store when they give up
            if stored is not None and stored.owner == self._origin and stored.state is record.state:
                for tell in job_tells:
                    tell()

    async def run(self) -> None:
        while True:
            if not self._dirty and not self._claims.updates:
                await self._wakeup.wait()
            try:
                await self.flush()
            except StoreError:  # the database away: the changes wait for it
                await backoff()(self.flush)

    async def close(self) -> None:
        try:
            await self.flush()
        except StoreError:  # the database away: wait for it a while, then raise its error
            await backoff(CLOSE_PATIENCE)(self.flush)


def make_sink(store: Store, origin: str, refused: Callable[[Entry], None]) -> MemorySink | BatchSink:
    """The write strategy for *store*, chosen once: in place over a MemoryStore, else batched."""
    if type(store) is MemoryStore:  # the one place the kind of store matters (a subclass may override)
        return MemorySink(store, origin)
    return BatchSink(store, origin, refused)
