"""MemoryStore: the default store, in this process's memory, indexed for cheap queries."""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Final, final

import anyio.lowlevel
import attrs

from anyjob._exceptions import JobError
from anyjob._kinds import EXTERNAL
from anyjob._records import JobInfo, JobRecord, JobStatistics, check_json_safe, now_timestamp
from anyjob._signal import Signal
from anyjob._state import State
from anyjob.stores._base import LOST_ERROR_TYPE, JobQuery, RecordUpdate, StoreChange, lost_error, snapshot
from anyjob.stores._index import Index, Tally

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


_CONTAINERS: Final = (list, dict)


def _snapshot(record: JobRecord) -> JobInfo:
    info = snapshot(record)
    params: Any = info.params
    result: Any = info.result
    # Params and results are handed out as copies: a caller mutating them must not
    # change the record. (Records hold plain lists and dicts: copies made by check_json_safe.)
    if type(params) in _CONTAINERS or type(result) in _CONTAINERS:
        return attrs.evolve(
            info, params=check_json_safe(params, "params"), result=check_json_safe(result, "result")
        )
    return info


@final
class _MemoryFeed:
    """Changes by other origins, coalesced per job (the latest change wins).

    A changed job is kept as its record (the snapshot is taken when the feed is
    read); a deleted one as its info at the deletion (the record is gone then), or
    ``None`` when that info cannot be read.
    """

    __slots__ = ("_changed", "_closed", "_pending", "_store", "origin")

    def __init__(self, store: MemoryStore, origin: str) -> None:
        self._store = store
        self.origin = origin
        self._pending: dict[str, JobRecord | JobInfo | None] = {}
        self._changed = Signal()
        self._closed = False

    def push(self, job_id: str, change: JobRecord | JobInfo | None) -> None:
        """*change*: the changed record, or the final info of a deleted one (``None``: unknown)."""
        pending = self._pending
        pending.pop(job_id, None)  # keep the order of the latest change
        pending[job_id] = change
        self._changed.fire()

    def close(self) -> None:
        self._closed = True
        self._store._feeds = [feed for feed in self._store._feeds if feed is not self]
        self._changed.fire()

    async def __aiter__(self) -> AsyncIterator[list[StoreChange]]:
        while not self._closed:
            if not self._pending:
                await self._changed.wait()
                continue
            pending, self._pending = self._pending, {}
            yield [_change(job_id, change) for job_id, change in pending.items()]


def _change(job_id: str, change: JobRecord | JobInfo | None) -> StoreChange:
    if change is None or isinstance(change, JobInfo):  # deleted
        return StoreChange(job_id=job_id, info=None, cancel_requested=False, owner="", final=change)
    return StoreChange(
        job_id=job_id, info=_snapshot(change), cancel_requested=change.cancel_requested, owner=change.owner
    )


def _final(record: JobRecord) -> JobInfo | None:
    """The info a deleted *record* ended with (``None`` for one whose times cannot be read)."""
    try:
        return _snapshot(record)
    except ValueError:  # a NaN time: the deletion is still reported
        return None


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
        self._feeds: list[_MemoryFeed] = []
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
        return None if record is None else _snapshot(record)

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
            final = _final(record)  # one snapshot for all
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

    async def get(self, job_id: str) -> JobInfo | None:
        """A snapshot of one record, or ``None``."""
        record = self._records.get(job_id)
        return None if record is None else _snapshot(record)

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
                return [_snapshot(record) for record in page[query.offset :]]
        found: list[JobRecord] = []
        for record in reversed(self._records.values()):
            if query.matches(record):
                found.append(record)
                if len(found) >= wanted:
                    break
        return [_snapshot(record) for record in found[query.offset :]]

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

    def subscribe(self, origin: str) -> _MemoryFeed:
        """Subscribe to the changes made by every origin other than *origin*."""
        feed = _MemoryFeed(self, origin)
        self._feeds.append(feed)
        return feed
