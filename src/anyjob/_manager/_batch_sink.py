"""BatchSink: a manager's record changes reaching a store through the Store protocol alone.

Changes are coalesced per job and written in batches; a worker claims a job before it
starts it (one atomic write, CREATED to RUNNING, only while the job is still this
manager's); over a store that can (:class:`~anyjob.stores._grouped.GroupWrite`), the
new records of submitters share those transactions too (group commit, see
:mod:`anyjob._manager._batch`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, final

import anyio
import anyio.lowlevel
import attrs

from anyjob._checkpoint import Checkpoint
from anyjob._exceptions import StoreError
from anyjob._manager._batch import Batch
from anyjob._manager._entry import Entry
from anyjob._records import JobInfo, JobRecord, now_timestamp
from anyjob._signal import Signal
from anyjob._state import State
from anyjob.stores._base import RecordUpdate, Store
from anyjob.stores._grouped import GroupWrite, InsertedError
from anyjob.stores._outage import backoff

__all__ = ["CLOSE_PATIENCE", "BatchSink"]

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
        "_batch",
        "_creating",
        "_dirty",
        "_group_write",
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
        self._batch = Batch()  # the claims (and new records) for the next write
        self._wakeup = Signal()
        self._lock: anyio.Lock | None = None
        self.checkpoint: Checkpoint = anyio.lowlevel.checkpoint
        #: The store's ``insert_many`` (one transaction), or None: then one insert per record.
        self._insert_many: Callable[[list[JobRecord]], Awaitable[None]] | None = getattr(
            store, "insert_many", None
        )
        #: The store's ``write`` (new records and updates in one transaction), or None:
        #: then the records are inserted apart from the batches.
        self._group_write: GroupWrite | None = store if callable(getattr(store, "write", None)) else None  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self._dirty)

    def busy(self, job_id: str) -> bool:
        return job_id in self._creating

    async def insert(self, record: JobRecord) -> None:
        await self.insert_many((record,))

    async def insert_many(self, records: Sequence[JobRecord]) -> None:
        """One store call for several records (a store without ``insert_many``: one each).

        Over a store with ``write`` they go in the next batch instead (group commit).

        Cancelled, what may have been written is withdrawn; one by one, those stored
        before an insert that failed are withdrawn too (recorded CANCELED).
        """
        if not records:
            await self.checkpoint()
            return
        ids = [record.id for record in records]
        self._creating.update(ids)
        copies = [attrs.evolve(record) for record in records]  # the store keeps its own copies
        if self._group_write is not None:
            try:
                await self._insert_in_batch(copies, ids)
            finally:
                self._creating.difference_update(ids)
            return
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

    async def _insert_in_batch(self, records: list[JobRecord], ids: list[str]) -> None:
        """Group commit: *records* go in the next batch, which this call writes if no other has.

        Whoever holds the lock writes every batch pending when it gets it, so the records
        of the submitters meanwhile (and the workers' claims, and the ends) share one
        transaction. Cancelled before its batch is taken, nothing is written; after, the
        answer is awaited (shielded) and what was stored is withdrawn (recorded CANCELED).
        """
        await self.checkpoint()  # first: cancelled, nothing is stored
        batch = self._batch
        index = batch.add_records(records)
        try:
            await self.flush(until=batch)
        except StoreError:
            pass  # the batch's updates failed; this call's answer is in the batch
        except BaseException:
            if batch.withdraw_records(index):
                raise  # not taken: nothing written
            if not batch.answered:
                with anyio.CancelScope(shield=True):
                    await batch.done.wait()
            if batch.stored(index):
                await self._withdraw(ids)
            raise
        error = batch.answer_of(index)
        if error is not None:
            raise error

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
        batch = self._batch
        index = batch.add_claim(update)
        self._wakeup.fire()
        try:
            await batch.done.wait()
        except BaseException:
            batch.withdraw_claim(index)  # not taken yet: withdrawn, nothing written
            raise
        claimed: bool
        if batch.claimed is not None:
            claimed = batch.claimed[index]
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
        if not self._dirty and not self._batch and (lock is None or not lock.locked()):
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

    async def flush(self, until: Batch | None = None) -> None:
        """Write every pending claim, new record and change to the store, in order, as one batch.

        With *until*: nothing more once that batch was written (by another call meanwhile).
        """
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if (not self._dirty and not self._batch) or (until is not None and until.answered):
                return
            batch = self._batch
            self._batch = Batch()
            claims, records = batch.take()
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
                    applied = await self._write(batch, records, claims + updates)
                    batch.answer_claims(claims, applied[: len(claims)])
                except StoreError as exc:
                    # Not written: again with the next batch, before anything changed since
                    # (kept in the order of the first change of each job), told with it.
                    self._dirty = {entry.record.id: entry for entry in entries} | self._dirty
                    for job_id, waiting in self._tells.items():
                        tells.setdefault(job_id, []).extend(waiting)
                    self._tells = tells
                    batch.fail_claims(exc)  # each claimer tries again on its own, with backoff
                    raise
                finally:
                    batch.finish()
            await self._written(entries, updates, applied[len(claims) :], tells)

    async def _write(self, batch: Batch, records: list[JobRecord], updates: list[RecordUpdate]) -> list[bool]:
        """One transaction for *records* and *updates* where the store can; answers the records.

        Raises:
            StoreError: The updates were not written (or their answers lost).
        """
        if not records:
            return await self._store.apply(updates, origin=self._origin) if updates else []
        assert self._group_write is not None  # noqa: S101 - records are batched only then
        try:
            applied = await self._group_write.write(records, updates, origin=self._origin)
        except InsertedError:
            batch.records_stored()  # the updates' answers were lost: written again
            raise
        except StoreError:
            raise  # nothing stored: Batch.finish hands this error to the submitters
        except Exception:  # noqa: BLE001 - a taken id (JobError): each submitter gets its own answer
            await self._insert_apart(batch)
            return await self._store.apply(updates, origin=self._origin) if updates else []
        batch.records_stored()
        return applied

    async def _insert_apart(self, batch: Batch) -> None:
        """The batch's records, one submitter's at a time: each gets its own answer."""
        store = self._group_write
        assert store is not None  # noqa: S101 - called only then
        for index, pending in enumerate(batch.inserts):
            if pending is None:
                continue
            try:
                await store.write(pending, (), origin=self._origin)
            except Exception as exc:  # noqa: BLE001 - handed to that submitter
                batch.records_refused(index, exc)
            else:
                batch.record_stored(index)

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
            stored: JobRecord | None
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
            if not self._dirty and not self._batch:
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
