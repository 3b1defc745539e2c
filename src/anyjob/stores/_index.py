"""MemoryStore's index: records by id and by state, counts per name, durations, end order."""

from __future__ import annotations

from collections import deque
from typing import Final, final

from anyjob._records import JobRecord, JobStatistics
from anyjob._state import State

__all__: list[str] = []

_STATES: Final = tuple(State)
_CREATED: Final = State.CREATED
_RUNNING: Final = State.RUNNING
_CANCELING: Final = State.CANCELING
_SUCCEEDED: Final = State.SUCCEEDED
_FAILED: Final = State.FAILED
_CANCELED: Final = State.CANCELED


@final
class Tally:
    """Counts per state (by ``State._index``) and summed durations of finished records."""

    __slots__ = ("by_state", "duration_count", "duration_sum")

    def __init__(self) -> None:
        self.by_state = [0] * len(_STATES)
        self.duration_sum = 0.0
        self.duration_count = 0

    def add(self, record: JobRecord) -> None:
        """Count *record* (for statistics over a filtered set; not part of an index)."""
        self.by_state[record.state._index] += 1
        started = record.started
        ended = record.ended
        if started is not None and ended is not None and record.state.is_done:
            self.duration_sum += ended - started if ended > started else 0.0
            self.duration_count += 1

    @property
    def total(self) -> int:
        return sum(self.by_state)

    def statistics(self, by_name: dict[str, int]) -> JobStatistics:
        """These counts as :class:`~anyjob.JobStatistics` (``by_name`` given)."""
        counts = self.by_state
        by_state = {state: counts[state._index] for state in _STATES}
        succeeded = counts[_SUCCEEDED._index]
        finished = succeeded + counts[_FAILED._index] + counts[_CANCELED._index]
        return JobStatistics(
            total=sum(counts),
            by_state=by_state,
            by_name=by_name,
            active=counts[_CREATED._index] + counts[_RUNNING._index] + counts[_CANCELING._index],
            success_rate=succeeded / finished if finished else 0.0,
            average_duration=self.duration_sum / self.duration_count if self.duration_count else 0.0,
        )


def _duration(started: float | None, ended: float | None) -> float | None:
    if started is None or ended is None:
        return None
    return ended - started if ended > started else 0.0


@final
class Index:
    """Records by id and by state, counts per state and name, finished records in end order.

    Invariant (once :meth:`settle` has run; every reader settles first):

    * every record of ``records`` is in ``by_state[record.state._index]`` and in no
      other ``by_state`` dict, so ``len(by_state[i])`` counts the records in state *i*;
    * ``names[n].by_state[i]`` counts the records named *n* in state *i*, and a name
      with no record left has no tally;
    * ``totals`` and ``names[n]`` sum ``max(ended - started, 0)`` over the done records
      having both times (``totals.by_state`` is unused: the dicts' sizes are the counts);
    * ``finished`` holds every done record with an end time, in the order they ended;
      it may also hold records deleted since or running again (skipped when met);
    * ``stale`` holds every record that had ``stale_after`` set when it was added or
      changed (:meth:`add`, :meth:`change`) and is neither deleted nor seen done since
      (``MemoryStore.expire_stale`` drops those it finds done), so that only these are
      looked at for staleness.

    Every change to these goes through :meth:`add`, :meth:`move` (or :meth:`move_later`)
    and :meth:`remove`: nothing else touches them. ``records`` keeps insertion order,
    oldest first (queries walk it backwards).
    """

    __slots__ = ("by_state", "finished", "names", "pending", "pending_from", "records", "stale", "totals")

    def __init__(self) -> None:
        self.records: dict[str, JobRecord] = {}
        self.by_state: list[dict[str, JobRecord]] = [{} for _ in _STATES]
        self.names: dict[str, Tally] = {}
        self.totals = Tally()
        self.finished: deque[JobRecord] = deque()
        self.stale: dict[str, JobRecord] = {}
        # One record whose move out of pending_from is put off (see move_later).
        self.pending: JobRecord | None = None
        self.pending_from: State = _CREATED

    def add(self, record: JobRecord) -> None:
        """Index a new *record* (its id must not be indexed yet)."""
        job_id = record.id
        self.records[job_id] = record
        state = record.state
        index = state._index
        self.by_state[index][job_id] = record
        named = self.names.get(record.name)
        if named is None:
            named = self.names[record.name] = Tally()
        named.by_state[index] += 1
        if record.stale_after is not None:  # watch(), inline: once per job
            self.stale[job_id] = record
        if state is not _CREATED and state.is_done:  # a new job (CREATED) has no duration yet
            self._count_end(record, named)

    def watch(self, record: JobRecord) -> None:
        """Keep *record* (indexed) in ``stale`` if its ``stale_after`` is set."""
        if record.stale_after is not None:
            self.stale[record.id] = record

    def _count_end(self, record: JobRecord, named: Tally) -> None:
        ended = record.ended
        if ended is not None:
            started = record.started
            if started is not None:
                duration = ended - started if ended > started else 0.0
                totals = self.totals
                totals.duration_sum += duration
                totals.duration_count += 1
                named.duration_sum += duration
                named.duration_count += 1
            self.finished.append(record)

    def move(self, record: JobRecord, old_state: State) -> None:
        """Re-index *record* after its state changed in place from *old_state* (not a done state).

        The fast path (a run moves forward): nothing of *record* was counted as done
        and its name is unchanged. For any other change use :meth:`change`.
        """
        if self.pending is record:  # its earlier move was put off: make both moves as one
            self.pending = None
            old_state = self.pending_from
        state = record.state
        if state is old_state:
            return
        old = old_state._index
        new = state._index
        job_id = record.id
        by_state = self.by_state
        del by_state[old][job_id]
        by_state[new][job_id] = record
        named = self.names[record.name]  # made when the record was added
        counts = named.by_state
        counts[old] -= 1
        counts[new] += 1
        if state.is_done:  # _count_end, inline: this runs once or twice per job (1 call of ~40)
            ended = record.ended
            if ended is not None:
                started = record.started
                if started is not None:
                    duration = ended - started if ended > started else 0.0
                    totals = self.totals
                    totals.duration_sum += duration
                    totals.duration_count += 1
                    named.duration_sum += duration
                    named.duration_count += 1
                self.finished.append(record)

    def move_later(self, record: JobRecord, old_state: State) -> None:
        """:meth:`move`, put off until the next :meth:`settle` (or move of *record*).

        A job that starts and ends without yielding then moves once, from CREATED
        straight to its end, instead of twice.
        """
        if self.pending is not None:
            self.settle()
        self.pending = record
        self.pending_from = old_state

    def settle(self) -> None:
        """Carry out the move put off by :meth:`move_later`, if any."""
        record = self.pending
        if record is not None:
            self.pending = None
            self.move(record, self.pending_from)

    def change(
        self, record: JobRecord, old_state: State, old: tuple[str, float | None, float | None]
    ) -> None:
        """Re-index *record* after any change in place (a settled index).

        Args:
            record: The indexed record, already changed.
            old_state: Its state when it was indexed.
            old: Its ``(name, started, ended)`` when it was indexed.
        """
        old_name, old_started, old_ended = old
        self.watch(record)
        old_named = self.names[old_name]
        was_done = old_state.is_done
        if was_done and (duration := _duration(old_started, old_ended)) is not None:
            for tally in (self.totals, old_named):
                tally.duration_sum -= duration
                tally.duration_count -= 1
        old_named.by_state[old_state._index] -= 1
        if record.name != old_name and not old_named.total:
            del self.names[old_name]
        named = self.names.get(record.name)
        if named is None:
            named = self.names[record.name] = Tally()
        state = record.state
        named.by_state[state._index] += 1
        if state is not old_state:
            del self.by_state[old_state._index][record.id]
            self.by_state[state._index][record.id] = record
        if not state.is_done:
            return
        if was_done and record.ended == old_ended:  # the same end: it keeps its place in finished
            if (duration := _duration(record.started, record.ended)) is not None:
                for tally in (self.totals, named):
                    tally.duration_sum += duration
                    tally.duration_count += 1
            return
        self._count_end(record, named)

    def remove(self, record: JobRecord) -> None:
        """Forget *record* (indexed, in a settled index); its place in ``finished`` is skipped later."""
        job_id = record.id
        del self.records[job_id]
        if self.stale:
            self.stale.pop(job_id, None)
        state = record.state
        del self.by_state[state._index][job_id]
        named = self.names[record.name]
        named.by_state[state._index] -= 1
        if state.is_done and (duration := _duration(record.started, record.ended)) is not None:
            for tally in (self.totals, named):
                tally.duration_sum -= duration
                tally.duration_count -= 1
        if not named.total:  # names come and go (one per import, say): keep only those in use
            del self.names[record.name]

    def check(self) -> None:
        """Raise AssertionError unless the invariant holds (for tests; settles first)."""
        self.settle()
        records = self.records
        counts: dict[str, list[int]] = {}
        durations = 0
        for index, by_state in enumerate(self.by_state):
            for job_id, record in by_state.items():
                _check(records.get(job_id) is record, f"{job_id!r} indexed under a state but unknown")
                _check(record.state._index == index, f"{job_id!r} indexed under the wrong state")
        _check(sum(map(len, self.by_state)) == len(records), "a record missing from the state index")
        finished = {id(record) for record in self.finished}
        for record in records.values():
            counts.setdefault(record.name, [0] * len(_STATES))[record.state._index] += 1
            if record.state.is_done and record.ended is not None:
                _check(id(record) in finished, f"{record.id!r} done but not queued for cleanup")
                durations += record.started is not None
        _check({name: tally.by_state for name, tally in self.names.items()} == counts, "name counts")
        for job_id, record in self.stale.items():
            _check(records.get(job_id) is record, f"{job_id!r} watched for staleness but unknown")
        _check(self.totals.duration_count == durations, "duration count")

    def statistics(self, name: str | None) -> JobStatistics:
        """Counts over every record, or over those named *name* (a settled index)."""
        if name is not None:
            named = self.names.get(name) or Tally()
            total = named.total
            return named.statistics({name: total} if total else {})
        totals = self.totals
        totals.by_state = [len(records) for records in self.by_state]
        return totals.statistics({key: tally.total for key, tally in self.names.items()})


def _check(condition: bool, what: str) -> None:  # noqa: FBT001 - reads as an assertion
    if not condition:
        raise AssertionError(what)
