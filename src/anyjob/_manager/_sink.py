"""Sinks: how a manager's record changes reach its store, chosen once when the manager is built.

* :class:`MemorySink` writes in place: over a :class:`~anyjob.stores.MemoryStore` the
  manager's records are the store's own objects, re-indexed as they change.
* :class:`~anyjob._manager._batch_sink.BatchSink` works through the
  :class:`~anyjob.stores.Store` protocol alone: changes are coalesced per job and written
  in batches, and a worker claims a job before it starts it: one atomic write, CREATED to
  RUNNING, only while the job is still this manager's (another manager may have canceled
  it, or retried it too).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, final

import anyio
import anyio.lowlevel

from anyjob._checkpoint import Checkpoint
from anyjob._manager._batch_sink import BatchSink
from anyjob._manager._entry import Entry
from anyjob._records import JobInfo, JobRecord
from anyjob._state import State
from anyjob.stores._base import RecordUpdate, Store
from anyjob.stores._memory import MemoryStore

__all__ = ["BatchSink", "MemorySink", "Sink", "make_sink"]


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


def make_sink(store: Store, origin: str, refused: Callable[[Entry], None]) -> MemorySink | BatchSink:
    """The write strategy for *store*, chosen once: in place over a MemoryStore, else batched."""
    if type(store) is MemoryStore:  # the one place the kind of store matters (a subclass may override)
        return MemorySink(store, origin)
    return BatchSink(store, origin, refused)
