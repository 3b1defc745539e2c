"""MemoryStore: the default store, in this process's memory, indexed for cheap queries."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Final, final

import anyio.lowlevel
import attrs

from anyjob._exceptions import JobError
from anyjob._records import JobInfo, JobRecord, JobStatistics, check_json_safe, now_timestamp
from anyjob._signal import Signal
from anyjob._state import State
from anyjob.stores._base import JobQuery, RecordUpdate, StoreChange

__all__ = ["MemoryStore"]

_STATES: Final = tuple(State)
_CREATED: Final = State.CREATED
_RUNNING: Final = State.RUNNING
_CANCELED: Final = State.CANCELED
# Use the per-state indexes (and sort) when they hold at most this share of all records;
# otherwise walk all records newest first and stop at the page's end.
_INDEX_SHARE: Final = 0.25


class _Tally:
    """Counts per state and the summed durations of finished records."""

    __slots__ = ("by_state", "duration_count", "duration_sum")

    def __init__(self) -> None:
        self.by_state = [0] * len(_STATES)
        self.duration_sum = 0.0
        self.duration_count = 0

    def add(self, record: JobRecord, sign: int) -> None:
        self.by_state[record.state._index] += sign
        self.add_duration(record, sign)

    def add_duration(self, record: JobRecord, sign: int) -> None:
        started = record.started
        ended = record.ended
        if started is not None and ended is not None and record.state.is_done:
            self.duration_sum += sign * (ended - started if ended > started else 0.0)
            self.duration_count += sign

    @property
    def total(self) -> int:
        return sum(self.by_state)


def _newest_first(record: JobRecord) -> tuple[float, str]:
    return (record.created, record.id)


def _statistics(tally: _Tally, by_name: dict[str, int]) -> JobStatistics:
    by_state = {state: tally.by_state[state._index] for state in _STATES}
    succeeded = by_state[State.SUCCEEDED]
    finished = succeeded + by_state[State.FAILED] + by_state[_CANCELED]
    active = by_state[_CREATED] + by_state[_RUNNING] + by_state[State.CANCELING]
    return JobStatistics(
        total=tally.total,
        by_state=by_state,
        by_name=by_name,
        active=active,
        success_rate=succeeded / finished if finished else 0.0,
        average_duration=tally.duration_sum / tally.duration_count if tally.duration_count else 0.0,
    )


_CONTAINERS: Final = (list, dict)


def _snapshot(record: JobRecord) -> JobInfo:
    info = record.info()
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
    """Changes by other origins, coalesced per job (the latest state wins)."""

    __slots__ = ("_changed", "_closed", "_pending", "_store", "origin")

    def __init__(self, store: MemoryStore, origin: str) -> None:
        self._store = store
        self.origin = origin
        self._pending: dict[str, JobRecord | None] = {}
        self._changed = Signal()
        self._closed = False

    def push(self, job_id: str, record: JobRecord | None) -> None:
        pending = self._pending
        pending.pop(job_id, None)  # keep the order of the latest change
        pending[job_id] = record
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
            yield [
                StoreChange(
                    job_id=job_id,
                    info=None if record is None else _snapshot(record),
                    cancel_requested=False if record is None else record.cancel_requested,
                    owner="" if record is None else record.owner,
                )
                for job_id, record in pending.items()
            ]


@final
class MemoryStore:
    """Job records in this process's memory: the default store.

    Indexed by id, by state and by name, with running counts, so ``status``,
    ``list(state=...)`` and ``stats()`` do not scan every finished job. Several
    managers in one event loop may share one ``MemoryStore``: each sees the
    others' jobs, and ``cancel`` reaches a job running under another manager.
    Nothing survives the process; use a durable store for that.
    """

    def __init__(self) -> None:
        self._records: dict[str, JobRecord] = {}
        # Indexed by State._index: the records in each state.
        self._by_state: list[dict[str, JobRecord]] = [{} for _ in _STATES]
        self._totals = _Tally()
        self._names: dict[str, _Tally] = {}
        # Finished records in the order they ended, for cleanup without a scan.
        self._finished: deque[JobRecord] = deque()
        self._feeds: list[_MemoryFeed] = []
        # One record whose move out of the CREATED index is put off (see reindex_later).
        self._pending: JobRecord | None = None
        self._pending_from: State = _CREATED

    def __repr__(self) -> str:
        return f"<MemoryStore records={len(self._records)}>"

    def __len__(self) -> int:
        return len(self._records)

    # -- writing ----------------------------------------------------------------

    def _tallies(self, record: JobRecord) -> tuple[_Tally, _Tally]:
        tally = self._names.get(record.name)
        if tally is None:
            tally = self._names[record.name] = _Tally()
        return self._totals, tally

    def _count(self, record: JobRecord, sign: int) -> None:
        for tally in self._tallies(record):
            tally.add(record, sign)

    def _publish(self, record: JobRecord, origin: str) -> None:
        for feed in self._feeds:
            if feed.origin != origin:
                feed.push(record.id, record)

    def insert_now(self, record: JobRecord) -> None:
        """:meth:`insert` without the ``await`` (the store is in memory)."""
        job_id = record.id
        records = self._records
        if job_id in records:
            msg = f"a job with id {job_id!r} already exists"
            raise JobError(msg, job_id=job_id)
        records[job_id] = record
        state = record.state
        index = state._index
        self._by_state[index][job_id] = record
        if state is _CREATED:  # the usual case: a new job, no duration to count yet
            self._totals.by_state[index] += 1
            named = self._names.get(record.name)
            if named is None:
                named = self._names[record.name] = _Tally()
            named.by_state[index] += 1
        else:
            self._count(record, 1)
            if state.is_done and record.ended is not None:
                self._finished.append(record)
        feeds = self._feeds
        if feeds and (len(feeds) > 1 or feeds[0].origin != record.owner):
            self._publish(record, record.owner)

    async def open(self) -> None:
        """Nothing to connect to: a checkpoint, as every ``await`` of a library call is."""
        await anyio.lowlevel.checkpoint()

    async def insert(self, record: JobRecord) -> None:
        """Add a new record; the store takes ownership of it.

        Raises:
            JobError: A record with that id exists.
        """
        self.insert_now(record)

    async def apply(self, updates: Sequence[RecordUpdate], *, origin: str) -> list[bool]:
        """Apply a batch of updates in order; for each, whether it applied."""
        self._settle()
        results: list[bool] = []
        for update in updates:
            record = self._records.get(update.job_id)
            if record is None or (update.expect is not None and record.state not in update.expect):
                results.append(False)
                continue
            self._change(record, update.fields)
            if self._feeds:
                self._publish(record, origin)
            results.append(True)
        return results

    def _change(self, record: JobRecord, fields: Mapping[str, Any]) -> None:
        old_state = record.state
        totals, named = self._tallies(record)
        was_done = old_state.is_done
        if was_done:
            totals.add_duration(record, -1)
            named.add_duration(record, -1)
        old_ended = record.ended
        for key, value in fields.items():
            setattr(record, key, value)
        new_state = record.state
        if new_state is not old_state:
            self._move(record, old_state, totals, named)
        if new_state.is_done:
            totals.add_duration(record, 1)
            named.add_duration(record, 1)
            if record.ended is not None and (not was_done or record.ended != old_ended):
                self._finished.append(record)

    def _move(self, record: JobRecord, old_state: State, totals: _Tally, named: _Tally) -> None:
        """Move *record* from *old_state*'s index and counts to its current state's."""
        old_index = old_state._index
        new_index = record.state._index
        del self._by_state[old_index][record.id]
        self._by_state[new_index][record.id] = record
        totals.by_state[old_index] -= 1
        totals.by_state[new_index] += 1
        named.by_state[old_index] -= 1
        named.by_state[new_index] += 1

    def reindex_later(self, record: JobRecord, old_state: State) -> None:
        """:meth:`reindex`, put off until the next read or write of the indexes.

        A job that starts and ends without yielding then moves once, from
        CREATED straight to its end, instead of twice; nobody can look at the
        indexes in between without going through a method that settles first.
        """
        if self._pending is not None:
            self._settle()
        self._pending = record
        self._pending_from = old_state

    def _settle(self) -> None:
        """Carry out the re-indexing put off by :meth:`reindex_later`, if any."""
        record = self._pending
        if record is not None:
            self._pending = None
            self.reindex(record, self._pending_from)

    def reindex(self, record: JobRecord, old_state: State) -> None:
        """Re-index *record* (owned by this store) after its state changed from *old_state* in place.

        The in-process fast path of a :class:`~anyjob.JobManager`, which writes the
        record it shares with this store directly; *old_state* must not be a done
        state (runs only move forward). Other writers use :meth:`apply`.
        """
        if self._pending is record:  # its earlier move was put off: make both moves as one
            self._pending = None
            old_state = self._pending_from
        # _move and _Tally.add_duration, inline: this runs twice per job.
        state = record.state
        if state is old_state:
            return
        old = old_state._index
        new = state._index
        job_id = record.id
        by_state = self._by_state
        del by_state[old][job_id]
        by_state[new][job_id] = record
        totals = self._totals
        counts = totals.by_state
        counts[old] -= 1
        counts[new] += 1
        named = self._names[record.name]  # made when the record was inserted
        counts = named.by_state
        counts[old] -= 1
        counts[new] += 1
        if state.is_done:
            started = record.started
            ended = record.ended
            if ended is not None:
                if started is not None:
                    duration = ended - started if ended > started else 0.0
                    totals.duration_sum += duration
                    totals.duration_count += 1
                    named.duration_sum += duration
                    named.duration_count += 1
                self._finished.append(record)

    def touched(self, record: JobRecord, origin: str) -> None:
        """Tell the other managers' feeds that *record* changed (fast path, see :meth:`reindex`)."""
        self._publish(record, origin)

    async def request_cancel(self, job_id: str, *, origin: str) -> State | None:
        """Ask for a job to be canceled; returns its state before, or ``None`` if unknown."""
        self._settle()
        record = self._records.get(job_id)
        if record is None:
            return None
        before = record.state
        if before is _CREATED:
            self._change(record, {"state": _CANCELED, "ended": now_timestamp(), "cancel_requested": True})
        elif before is _RUNNING:
            record.cancel_requested = True
        else:
            return before
        if self._feeds:
            self._publish(record, origin)
        return before

    async def delete_finished(self, ended_before: float) -> int:
        """Delete finished records that ended before this POSIX time; returns how many."""
        self._settle()
        deleted = 0
        finished = self._finished
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
            del records[record.id]
            del self._by_state[record.state._index][record.id]
            self._count(record, -1)
            named = self._names[record.name]
            if not named.total:  # names come and go (one per import, say): keep only those in use
                del self._names[record.name]
            deleted += 1
            for feed in self._feeds:
                feed.push(record.id, None)
        return deleted

    # -- reading ----------------------------------------------------------------

    async def get(self, job_id: str) -> JobInfo | None:
        """A snapshot of one record, or ``None``."""
        record = self._records.get(job_id)
        return None if record is None else _snapshot(record)

    def get_now(self, job_id: str) -> JobInfo | None:
        """:meth:`get` without the ``await`` (the store is in memory)."""
        record = self._records.get(job_id)
        return None if record is None else _snapshot(record)

    def state_now(self, job_id: str) -> State | None:
        """The state of one record without building a snapshot, or ``None``."""
        record = self._records.get(job_id)
        return None if record is None else record.state

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
        self._settle()
        wanted = query.offset + query.limit
        states = query.states
        if states is not None:
            indexed = sum(len(self._by_state[state._index]) for state in states)
            if indexed <= len(self._records) * _INDEX_SHARE:
                candidates = (
                    record
                    for state in states
                    for record in self._by_state[state._index].values()
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
        self._settle()
        if labels:
            tally = _Tally()
            by_name: dict[str, int] = {}
            query = JobQuery(name=name, labels=labels)
            for record in self._records.values():
                if query.matches(record):
                    tally.add(record, 1)
                    by_name[record.name] = by_name.get(record.name, 0) + 1
            return _statistics(tally, by_name)
        if name is not None:
            tally = self._names.get(name) or _Tally()
            return _statistics(tally, {name: tally.total} if tally.total else {})
        return _statistics(
            self._totals,
            {key: tally.total for key, tally in self._names.items() if tally.total},
        )

    def subscribe(self, origin: str) -> _MemoryFeed:
        """Subscribe to the changes made by every origin other than *origin*."""
        feed = _MemoryFeed(self, origin)
        self._feeds.append(feed)
        return feed
