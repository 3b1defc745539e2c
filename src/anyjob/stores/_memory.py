"""MemoryStore: the default store, in this process's memory, indexed for cheap queries."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Final, final

import anyio.lowlevel
import attrs

from anyjob._exceptions import JobError
from anyjob._kinds import EXTERNAL
from anyjob._records import JobInfo, JobRecord, JobStatistics, check_json_safe, now_timestamp
from anyjob._state import State
from anyjob.stores._base import (
    LOST_ERROR_TYPE,
    JobQuery,
    RecordUpdate,
    check_claim,
    check_lease,
    check_new_ids,
    lost_error,
)
from anyjob.stores._index import Index, Tally
from anyjob.stores._memory_feed import MemoryFeed, copied_snapshot, final_info
from anyjob.stores._memory_leases import Leases

__all__ = ["MemoryStore"]

_CREATED: Final = State.CREATED
_RUNNING: Final = State.RUNNING
_CANCELING: Final = State.CANCELING
_CANCELED: Final = State.CANCELED
_FAILED: Final = State.FAILED
#: Ends a stored cancel request overrides (see Store.apply).
_OVERRIDDEN_ENDS: Final = frozenset({State.SUCCEEDED, State.FAILED})
_FIELDS: Final = frozenset(field.name for field in attrs.fields(JobRecord)) - {"id"}
# Use the per-state indexes (and sort) when they hold at most this share of all records;
# otherwise walk all records newest first and stop at the page's end.
_INDEX_SHARE: Final = 0.25


def _newest_first(record: JobRecord) -> tuple[float, str]:
    return (record.created, record.id)


@final
class MemoryStore:
    """Job records in this process's memory: the default store.

    Indexed by id, by state and by name, with running counts, so ``status``,
    ``list(state=...)`` and ``stats()`` do not scan every finished job. Several
    managers in one event loop may share one ``MemoryStore``: each sees the
    others' jobs, and ``cancel`` reaches a job running under another manager.
    Nothing survives the process; use a durable store for that.

    Besides the :class:`~anyjob.stores.Store` protocol it has an in-process fast
    path for a :class:`~anyjob.JobManager`, which shares its records with the store
    and writes them in place: :meth:`insert_now`, :attr:`reindex`,
    :attr:`reindex_later`, :meth:`notify`, :meth:`record_now`, :meth:`get_now`
    and :meth:`state_now`. Nothing there awaits.

    :meth:`expire_stale` looks only at the records that had ``stale_after`` set when
    they were inserted or updated through :meth:`apply` (not at every record): a
    writer on the fast path sets ``stale_after`` before :meth:`insert_now`, or through
    :meth:`apply`, never in place from ``None``.

    Leases are kept by this process's clock (``time.time()``). :meth:`claim_waiting`
    returns the store's **own** records (shared, not copies: the in-process manager
    writes them in place, as it does those of :meth:`record_now`); it looks at every
    waiting record, as :meth:`recover_lost` does at every live one when a lease ran out.
    """

    reindex: Final[Callable[[JobRecord, State], None]]
    """``reindex(record, old_state)``: re-index *record* after its state changed in place.

    The in-process fast path of a :class:`~anyjob.JobManager`, which writes the
    record it shares with this store directly; *old_state* must not be a done
    state (runs only move forward). Other writers use :meth:`apply`.
    """

    reindex_later: Final[Callable[[JobRecord, State], None]]
    """``reindex_later(record, old_state)``: :attr:`reindex`, put off until the next read or write.

    A job that starts and ends without yielding then moves once, from CREATED
    straight to its end, instead of twice; nobody can look at the indexes in
    between without going through a method that settles first.
    """

    def __init__(self) -> None:
        index = self._index = Index()
        # The index's own dict (never replaced): one attribute lookup less on the fast path.
        self._records = index.records
        self._feeds: list[MemoryFeed] = []
        self._leases = Leases()
        # The index's own methods, not wrappers: one call less per job for each.
        self.reindex = index.move
        self.reindex_later = index.move_later

    def __repr__(self) -> str:
        return f"<MemoryStore records={len(self._records)}>"

    def __len__(self) -> int:
        return len(self._records)

    # -- the in-process fast path of a JobManager -------------------------------------------

    def insert_now(self, record: JobRecord, origin: str | None = None) -> None:
        """:meth:`insert` without the ``await`` (the store is in memory).

        Raises:
            JobError: A record with that id exists.
        """
        if record.id in self._records:
            msg = f"a job with id {record.id!r} already exists"
            raise JobError(msg, job_id=record.id)
        self._index.add(record)
        feeds = self._feeds
        if feeds:
            if origin is None:
                origin = record.owner
            if len(feeds) > 1 or feeds[0].origin != origin:
                self._publish(record, origin)

    def insert_many_now(self, records: Sequence[JobRecord], origin: str | None = None) -> None:
        """:meth:`insert_many` without the ``await``: all of *records*, or none.

        Raises:
            JobError: A record with one of those ids exists, or two of them share one.
        """
        check_new_ids(records, self._records)
        for record in records:
            self.insert_now(record, origin)

    def notify(self, record: JobRecord, origin: str) -> None:
        """Tell the feeds of origins other than *origin* that *record* changed (fast path).

        A cheap no-op when no other origin subscribed (one manager alone on the store).
        """
        feeds = self._feeds
        if feeds and (len(feeds) > 1 or feeds[0].origin != origin):
            self._publish(record, origin)

    def record_now(self, job_id: str) -> JobRecord | None:
        """The store's own record of *job_id* (shared, not a copy), or ``None`` (fast path)."""
        return self._records.get(job_id)

    def get_now(self, job_id: str) -> JobInfo | None:
        """:meth:`get` without the ``await`` (the store is in memory)."""
        record = self._records.get(job_id)
        return None if record is None else copied_snapshot(record)

    def state_now(self, job_id: str) -> State | None:
        """The state of one record without building a snapshot, or ``None``."""
        record = self._records.get(job_id)
        return None if record is None else record.state

    def _publish(self, record: JobRecord, origin: str) -> None:
        for feed in self._feeds:
            if feed.origin != origin:
                feed.push(record.id, record)

    # -- the Store protocol -------------------------------------------------------------------

    async def open(self) -> None:
        """Nothing to connect to: a checkpoint, as every ``await`` of a library call is."""
        await anyio.lowlevel.checkpoint()

    async def insert(self, record: JobRecord, *, origin: str | None = None) -> None:
        """Add a new record; the store takes ownership of it (feeds but *origin*'s are told).

        Raises:
            JobError: A record with that id exists.
        """
        self.insert_now(record, origin)

    async def insert_many(self, records: Sequence[JobRecord], *, origin: str | None = None) -> None:
        """Add new records, all or none (see :meth:`Store.insert <anyjob.stores.Store.insert>`).

        Raises:
            JobError: A record with one of those ids exists, or two of them share one.
        """
        self.insert_many_now(records, origin)

    async def apply(self, updates: Sequence[RecordUpdate], *, origin: str) -> list[bool]:
        """Apply a batch of updates in order; for each, whether it applied.

        A stored cancel request turns an update's SUCCEEDED or FAILED into CANCELED
        (see :meth:`Store.apply <anyjob.stores.Store.apply>`).

        Raises:
            ValueError: An update names a field a record does not have (or ``id``).
        """
        for update in updates:
            if not update.fields.keys() <= _FIELDS:
                msg = f"cannot update {sorted(set(update.fields) - _FIELDS)} of a job record"
                raise ValueError(msg)
        index = self._index
        index.settle()
        records = self._records
        results: list[bool] = []
        for update in updates:
            record = records.get(update.job_id)
            if (
                record is None
                or (update.expect is not None and record.state not in update.expect)
                or (update.owner is not None and record.owner != update.owner)
            ):
                results.append(False)
                continue
            fields: Mapping[str, Any] = update.fields
            if not fields:  # a check only: nothing changes, nobody is told
                results.append(True)
                continue
            if record.cancel_requested and fields.get("state") in _OVERRIDDEN_ENDS:
                fields = {**fields, "state": _CANCELED}
            old_state = record.state
            old = (record.name, record.started, record.ended)
            for key, value in fields.items():
                setattr(record, key, value)
            index.change(record, old_state, old)
            if self._feeds:
                self._publish(record, origin)
            results.append(True)
        return results

    async def request_cancel(self, job_id: str, *, origin: str) -> State | None:
        """Ask for a job to be canceled; returns its state before, or ``None`` if unknown."""
        index = self._index
        index.settle()
        record = self._records.get(job_id)
        if record is None:
            return None
        before = record.state
        if before is _CREATED:
            old = (record.name, record.started, record.ended)
            record.state = _CANCELED
            record.ended = now_timestamp()
            record.cancel_requested = True
            index.change(record, before, old)
        elif before is _RUNNING:
            if record.cancel_requested:
                return _CANCELING  # asked already: on its way there
            record.cancel_requested = True
            if record.owner == EXTERNAL:  # no manager runs it: CANCELING, for its reporter to learn
                old = (record.name, record.started, record.ended)
                record.state = _CANCELING
                index.change(record, before, old)
        else:
            return before
        if self._feeds:
            self._publish(record, origin)
        return before

    async def delete(self, job_id: str, *, origin: str) -> State | None:
        """Delete one record if it is done; returns the state it had, or ``None`` if unknown."""
        index = self._index
        index.settle()
        record = self._records.get(job_id)
        if record is None:
            return None
        state = record.state
        if state.is_done:
            index.remove(record)  # its place in index.finished is skipped later
            if self._feeds:
                self._deleted(record, origin)
        return state

    def _deleted(self, record: JobRecord, origin: str) -> None:
        """Tell the feeds of origins other than *origin* that *record* was deleted."""
        feeds = [feed for feed in self._feeds if feed.origin != origin]
        if feeds:
            final = final_info(record)  # one snapshot for all
            for feed in feeds:
                feed.push(record.id, final)

    async def delete_finished(self, ended_before: float) -> int:
        """Delete finished records that ended before this POSIX time; returns how many."""
        index = self._index
        index.settle()
        deleted = 0
        finished = index.finished
        records = self._records
        while finished:
            record = finished[0]
            if records.get(record.id) is not record or not record.state.is_done:
                finished.popleft()  # deleted already, or running again (it is queued anew when it ends)
                continue
            ended = record.ended
            if ended is not None and ended >= ended_before:
                # Ordered by end time: nothing further has expired. (A record that ended
                # again later may hold its old place until then; that only delays it.)
                break
            finished.popleft()
            index.remove(record)
            deleted += 1
            if self._feeds:
                self._deleted(record, "")  # by nobody's manager: every feed
        return deleted

    async def expire_stale(self, now: float, *, origin: str) -> list[str]:
        """End every record whose runner went silent past its ``stale_after``; returns their ids.

        See :meth:`Store.expire_stale <anyjob.stores.Store.expire_stale>`; after a
        checkpoint, every change is made at once (nothing awaits in between).
        """
        await anyio.lowlevel.checkpoint()
        index = self._index
        index.settle()
        watched = index.stale
        if not watched:
            return []
        records = self._records
        expired: list[str] = []
        for job_id, record in list(watched.items()):
            stale_after = record.stale_after
            state = record.state
            if stale_after is None or state.is_done or records.get(job_id) is not record:
                del watched[job_id]  # nothing to watch any more (it is added again if that changes)
                continue
            if state is _CREATED:
                continue
            last = record.updated
            if last is None:
                last = record.started
                if last is None:
                    last = record.created
            if not last < now - stale_after:
                continue
            old = (record.name, record.started, record.ended)
            if state is _RUNNING:
                record.state = _CANCELED if record.cancel_requested else _FAILED
                record.error = lost_error(stale_after)
                record.error_type = LOST_ERROR_TYPE
            else:
                record.state = _CANCELED
            record.ended = now
            index.change(record, state, old)
            del watched[job_id]
            if self._feeds:
                self._publish(record, origin)
            expired.append(job_id)
        return expired

    async def renew_lease(self, origin: str, lease: float) -> None:
        """Record that the manager *origin* is alive for *lease* more seconds (this process's clock).

        Raises:
            TypeError, ValueError: An invalid *origin* or *lease* (see :meth:`Store.renew_lease
                <anyjob.stores.Store.renew_lease>`).
        """
        check_lease(origin, lease)
        await anyio.lowlevel.checkpoint()
        self._leases.renew(origin, lease, now_timestamp())

    async def release_lease(self, origin: str) -> None:
        """Delete *origin*'s lease (a clean close)."""
        await anyio.lowlevel.checkpoint()
        self._leases.release(origin)

    async def recover_lost(self, *, origin: str, resumable: Collection[str]) -> list[str]:
        """Resolve the jobs of every manager whose lease ran out; returns the ids whose state changed.

        See :meth:`Store.recover_lost <anyjob.stores.Store.recover_lost>`; after a
        checkpoint, every change is made at once (nothing awaits in between).
        """
        await anyio.lowlevel.checkpoint()
        if not self._leases.expires:
            return []
        index = self._index
        index.settle()
        changed, touched = self._leases.recover(index, origin, resumable, now_timestamp())
        if self._feeds:
            for record in touched:
                self._publish(record, origin)
        return changed

    async def claim_waiting(
        self, functions: Collection[str], *, origin: str, limit: int, grace: float
    ) -> list[JobRecord]:
        """Take up to *limit* waiting records for *origin*; returns the store's own records.

        See :meth:`Store.claim_waiting <anyjob.stores.Store.claim_waiting>`; after a
        checkpoint, every record is taken at once. The records returned are shared with the
        store, not copies (for the in-process manager, which writes them in place).

        Raises:
            TypeError, ValueError: An invalid *limit* or *grace*.
        """
        check_claim(limit, grace)
        await anyio.lowlevel.checkpoint()
        if limit <= 0 or not functions:
            return []
        index = self._index
        index.settle()
        taken = self._leases.claim(
            index, functions, origin=origin, limit=limit, grace=grace, now=now_timestamp()
        )
        if self._feeds:
            for record in taken:
                self._publish(record, origin)
        return taken

    async def get(self, job_id: str) -> JobInfo | None:
        """A snapshot of one record, or ``None``."""
        record = self._records.get(job_id)
        return None if record is None else copied_snapshot(record)

    async def get_record(self, job_id: str) -> JobRecord | None:
        """A copy of one record, or ``None``."""
        record = self._records.get(job_id)
        if record is None:
            return None
        return attrs.evolve(
            record,
            params=check_json_safe(record.params, "params"),
            result=check_json_safe(record.result, "result"),
        )

    async def query(self, query: JobQuery) -> list[JobInfo]:
        """Matching records, newest first, paginated."""
        index = self._index
        index.settle()
        wanted = query.offset + query.limit
        states = query.states
        if states is not None:
            by_state = index.by_state
            indexed = sum(len(by_state[state._index]) for state in states)
            if indexed <= len(self._records) * _INDEX_SHARE:
                candidates = (
                    record
                    for state in states
                    for record in by_state[state._index].values()
                    if query.matches(record)
                )
                page = heapq.nlargest(wanted, candidates, key=_newest_first)
                return [copied_snapshot(record) for record in page[query.offset :]]
        found: list[JobRecord] = []
        for record in reversed(self._records.values()):
            if query.matches(record):
                found.append(record)
                if len(found) >= wanted:
                    break
        return [copied_snapshot(record) for record in found[query.offset :]]

    async def statistics(
        self, *, name: str | None = None, labels: Mapping[str, str] | None = None
    ) -> JobStatistics:
        """Counts over the matching records (from running tallies unless labels are given)."""
        index = self._index
        index.settle()
        if labels:
            tally = Tally()
            by_name: dict[str, int] = {}
            query = JobQuery(name=name, labels=labels)
            for record in self._records.values():
                if query.matches(record):
                    tally.add(record)
                    by_name[record.name] = by_name.get(record.name, 0) + 1
            return tally.statistics(by_name)
        return index.statistics(name)

    def subscribe(self, origin: str) -> MemoryFeed:
        """Subscribe to the changes made by every origin other than *origin*."""
        feed = MemoryFeed(self, origin)
        self._feeds.append(feed)
        return feed
