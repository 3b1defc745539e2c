"""The Store protocol: persistence of job records as plain data, queries, and a change feed."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Collection, Container, Mapping, Sequence
from typing import Any, Final, Protocol, final, runtime_checkable

import attrs

from anyjob._exceptions import JobError, JobLostError
from anyjob._kinds import EXTERNAL
from anyjob._records import JobInfo, JobRecord, JobStatistics
from anyjob._state import State

__all__ = ["InsertMany", "JobQuery", "RecordUpdate", "Store", "StoreChange", "StoreFeed"]

#: The POSIX times a ``datetime`` can hold (UTC, years 1 to 9999): stored times
#: outside them are clamped to them when a record is read.
MIN_TIMESTAMP: Final = -62_135_596_800.0
MAX_TIMESTAMP: Final = 253_402_300_799.0
_TIMES: Final = ("created", "scheduled", "started", "ended", "updated")
#: The ``error_type`` :meth:`Store.expire_stale` gives a lost job (``anyjob.JobLostError``'s name).
LOST_ERROR_TYPE: Final = JobLostError.__qualname__


def _us(timestamp: float) -> int:
    return round(timestamp * 1_000_000)


def clamp_timestamp(value: float) -> float:
    """*value* moved into the range a ``datetime`` can hold.

    Raises:
        ValueError: *value* is NaN (no time at all).
    """
    if math.isnan(value):
        msg = "a stored time is NaN"
        raise ValueError(msg)
    return MIN_TIMESTAMP if value < MIN_TIMESTAMP else min(value, MAX_TIMESTAMP)


def lost_error(stale_after: float) -> str:
    """The ``error`` :meth:`Store.expire_stale` gives a job silent for *stale_after* seconds.

    ``"no report for 30 s (stale_after)"``: whole seconds without a fraction, the same
    text in every store.
    """
    shown = int(stale_after) if stale_after.is_integer() and abs(stale_after) < 1e15 else stale_after  # noqa: PLR2004
    return f"no report for {shown} s (stale_after)"


def lease_lost_error() -> str:
    """The ``error`` :meth:`Store.recover_lost` gives a running job of a lost manager.

    The same text in every store; its ``error_type`` is :data:`LOST_ERROR_TYPE`.
    """
    return "its manager stopped renewing its lease (lost)"


def check_lease(origin: str, lease: float) -> None:
    """Refuse what :meth:`Store.renew_lease` cannot record.

    Raises:
        TypeError: *lease* is not a number.
        ValueError: *origin* is ``""`` or ``"<external>"`` (no manager), or *lease* is not
            positive and finite.
    """
    if not origin or origin == EXTERNAL:
        msg = f"a lease is taken by a manager id, not {origin!r}"
        raise ValueError(msg)
    if isinstance(lease, bool) or not isinstance(lease, int | float):
        msg = f"lease must be a number of seconds, not {type(lease).__name__}"
        raise TypeError(msg)
    if not 0 < lease < math.inf:
        msg = f"lease must be positive and finite, got {lease!r}"
        raise ValueError(msg)


def check_claim(limit: int, grace: float) -> None:
    """Refuse what :meth:`Store.claim_waiting` cannot use.

    Raises:
        TypeError: *limit* is not an int, or *grace* not a number.
        ValueError: *grace* is negative or NaN (``math.inf``: never take a live owner's job).
    """
    if isinstance(limit, bool) or not isinstance(limit, int):
        msg = f"limit must be an int, not {type(limit).__name__}"
        raise TypeError(msg)
    if isinstance(grace, bool) or not isinstance(grace, int | float):
        msg = f"grace must be a number of seconds, not {type(grace).__name__}"
        raise TypeError(msg)
    if not grace >= 0:
        msg = f"grace must be zero or more seconds, got {grace!r}"
        raise ValueError(msg)


def check_new_ids(records: Sequence[JobRecord], stored: Container[str] = ()) -> None:
    """Refuse a batch for :meth:`InsertMany.insert_many` with an id twice or already *stored*.

    Raises:
        JobError: The first such id (in ``job_id``).
    """
    seen: set[str] = set()
    for record in records:
        job_id = record.id
        if job_id in seen or job_id in stored:
            msg = f"a job with id {job_id!r} already exists"
            raise JobError(msg, job_id=job_id)
        seen.add(job_id)


def claim_order(record: JobRecord) -> tuple[int, float, str]:
    """The order :meth:`Store.claim_waiting` takes records in: highest priority, oldest due, id."""
    return (-record.priority, record.scheduled, record.id)


def snapshot(record: JobRecord) -> JobInfo:
    """``record.info()``, with times a ``datetime`` cannot hold clamped to its range.

    A record from before the limits were checked (a far-future ``delay``) must not
    make every query over the store fail.

    Raises:
        ValueError: A time is NaN.
    """
    try:
        return record.info()
    except (OverflowError, ValueError, OSError):
        copy = attrs.evolve(record)
        for name in _TIMES:
            value = getattr(copy, name)
            if value is not None:
                setattr(copy, name, clamp_timestamp(value))
        return copy.info()


@final
@attrs.frozen
class JobQuery:
    """A filtered, paginated query over a store's records, newest first.

    Attributes:
        states: Only records in one of these states, or ``None`` for all.
        name: Only records with this name.
        labels: Only records having all these ``key: value`` pairs.
        created_after: Only records created after this POSIX time.
        created_before: Only records created before this POSIX time.
        limit: At most this many records (1..1000).
        offset: Skip this many matching records first.
    """

    states: frozenset[State] | None = None
    name: str | None = None
    labels: Mapping[str, str] | None = None
    created_after: float | None = None
    created_before: float | None = None
    limit: int = 50
    offset: int = 0

    def matches(self, record: JobRecord) -> bool:
        """Whether *record* passes every filter (pagination aside)."""
        if self.states is not None and record.state not in self.states:
            return False
        if self.name is not None and record.name != self.name:
            return False
        # Compared in whole microseconds, the resolution of the datetimes users pass in.
        if self.created_after is not None and not _us(record.created) > _us(self.created_after):
            return False
        if self.created_before is not None and not _us(record.created) < _us(self.created_before):
            return False
        if self.labels:
            labels = record.labels
            for key, value in self.labels.items():
                if labels.get(key) != value:
                    return False
        return True


@final
@attrs.define(eq=False)
class RecordUpdate:
    """Changes to one record, applied only if it is in an ``expect`` state and ``owner``'s.

    ``expect`` and ``owner`` each apply when given.

    Attributes:
        job_id: The record's id.
        fields: Field names of :class:`~anyjob.stores.JobRecord` and their new values.
        expect: The states the record must be in for the update to apply, or ``None``.
        owner: The manager id the record's ``owner`` must be for the update to apply, or
            ``None``: a manager writes only the jobs it still owns (another manager's
            ``retry`` makes a job that one's).
    """

    job_id: str
    fields: dict[str, Any]
    expect: frozenset[State] | None = None
    owner: str | None = None


@final
@attrs.frozen
class StoreChange:
    """One change another writer made, as a store's feed delivers it.

    Attributes:
        job_id: The record's id.
        info: The record after the change (``None`` when it was deleted).
        cancel_requested: Whether a cancel was requested for the job (``False`` once deleted).
        owner: The id of the manager that runs the job (``""`` once deleted).
        final: For a deleted record, its info as it was deleted (so that a manager whose
            waiter missed the job's end, because it ended and was deleted between two reads
            of the feed, still learns how it ended); ``None`` otherwise, or when the store
            does not know it (a deletion logged by an older anyjob).
    """

    job_id: str
    info: JobInfo | None
    cancel_requested: bool
    owner: str
    final: JobInfo | None = None


@runtime_checkable
class StoreFeed(Protocol):
    """A subscription to a store's changes made by writers other than its owner."""

    def __aiter__(self) -> AsyncIterator[list[StoreChange]]:
        """Iterate over batches of changes, in the order they were made per job."""
        ...

    def close(self) -> None:
        """End the subscription; the iterator then stops."""
        ...


@runtime_checkable
class Store(Protocol):
    """Where a :class:`~anyjob.JobManager` keeps its job records.

    Every async method may raise :class:`anyjob.StoreError` when the store fails
    (unreachable, locked, refusing); the driver's exception is its ``__cause__``.
    No driver exception type reaches the caller.

    Records are plain, JSON-safe data. Several managers may share one store:
    each writes as its own *origin* and learns of the others' writes through
    :meth:`subscribe`. A store knows nothing about running code.

    Implementations: :class:`~anyjob.stores.MemoryStore`; durable stores
    (SQLite, PostgreSQL) implement the same methods, and :class:`InsertMany` too
    (optional: a manager inserts one record at a time into a store without it).
    """

    async def open(self) -> None:
        """Make the store ready: connect and create the schema (idempotent; called on entering a manager).

        Blocking work (connecting, DDL) runs off the event loop, bounded by a connect timeout.

        Raises:
            anyjob.StoreError: The store cannot be reached or set up (the cause chained).
        """
        ...

    async def insert(self, record: JobRecord, *, origin: str | None = None) -> None:
        """Add a new record; the store takes ownership of it.

        The change goes to the feeds of every origin but *origin* (by default the
        record's ``owner``: the manager that inserts the job it runs).

        Raises:
            anyjob.JobError: A record with that id exists.
            anyjob.StoreError: The store failed (the cause chained).
        """
        ...

    async def apply(self, updates: Sequence[RecordUpdate], *, origin: str) -> list[bool]:
        """Apply a batch of updates in order; for each, whether it applied.

        An update does not apply when its record is gone or not in an expected state.

        A stored cancel request wins over a later end: when the stored record has
        ``cancel_requested`` and the update sets ``state`` to ``SUCCEEDED`` or
        ``FAILED``, the store writes ``CANCELED`` instead (with the update's other
        fields; it still counts as applied). So a job canceled from another process
        ends ``CANCELED`` even when it finishes before its owner hears of the request.

        Raises:
            ValueError: An update names a field a record does not have (or ``id``).
            anyjob.StoreError: The store failed (the cause chained); nothing applied.
        """
        ...

    async def get(self, job_id: str) -> JobInfo | None:
        """A snapshot of one record, or ``None``.

        Raises:
            anyjob.StoreError: The stored record cannot be decoded (its ``job_id`` set).
        """
        ...

    async def get_record(self, job_id: str) -> JobRecord | None:
        """A copy of one record (with its owner and function), or ``None``."""
        ...

    async def query(self, query: JobQuery) -> list[JobInfo]:
        """Matching records, newest first, paginated.

        A stored record that cannot be decoded does not fail the query: it is left
        out with a :class:`RuntimeWarning` naming its id (``get`` of it raises
        :class:`anyjob.StoreError`). Times out of a ``datetime``'s range are clamped.
        """
        ...

    async def statistics(
        self, *, name: str | None = None, labels: Mapping[str, str] | None = None
    ) -> JobStatistics:
        """Counts over the matching records."""
        ...

    async def request_cancel(self, job_id: str, *, origin: str) -> State | None:
        """Ask for a job to be canceled, whoever runs it; returns its state before, or ``None``.

        A waiting (``CREATED``) record becomes ``CANCELED`` at once; for a ``RUNNING``
        one the request is recorded and reaches its owner through the feed; a
        ``RUNNING`` external job (``owner`` ``"<external>"``: no manager runs it)
        becomes ``CANCELING`` with it, for its reporter to learn. A
        ``RUNNING`` record whose cancel was already requested answers ``CANCELING``
        (it is on its way there; nothing changes), so only the first request of a run
        answers ``RUNNING``: every manager tells "I canceled it" from "it was already
        being canceled" alike. Any other state is returned as it is, nothing changed.

        Returns:
            ``CREATED`` or ``RUNNING`` when this request changed something;
            ``CANCELING`` or a done state when it did not; ``None`` for an unknown id.
        """
        ...

    async def delete(self, job_id: str, *, origin: str) -> State | None:
        """Delete one record if it is done; returns the state it had, or ``None`` if unknown.

        A record that is not done is left as it is: a caller tells "not done"
        (a state that is not done) from "deleted" (a done state) by the answer.
        The feeds of origins other than *origin* see the deletion, with the
        record's final info (:attr:`StoreChange.final`).
        """
        ...

    async def delete_finished(self, ended_before: float) -> int:
        """Delete finished records that ended before this POSIX time; returns how many.

        Every feed sees each deletion, with the record's final info.
        """
        ...

    async def expire_stale(self, now: float, *, origin: str) -> list[str]:
        """End every record whose runner went silent past its ``stale_after``; returns their ids.

        A record is stale when ``stale_after`` is set, its state is ``RUNNING`` or
        ``CANCELING``, and its last sign of life (``updated``, else ``started``, else
        ``created``) is older than ``now - stale_after``. Atomically (one transaction in
        a database), each stale record ends with ``ended = now``:

        * a ``RUNNING`` one becomes ``FAILED``, with ``error_type`` ``"JobLostError"``
          and ``error`` ``"no report for {stale_after} s (stale_after)"``; as in
          :meth:`apply`, a stored cancel request wins: with ``cancel_requested`` it
          becomes ``CANCELED`` instead (the error still written);
        * a ``CANCELING`` one becomes ``CANCELED``.

        Records without ``stale_after``, waiting (``CREATED``) and done records are never
        touched. Like any write, each change reaches the feeds of origins other than
        *origin* (as the record's end). A manager calls this about once a second, so it
        is cheap when nothing is stale.

        Args:
            now: The current POSIX time.
            origin: The id of the manager asking (its own feed is not told).

        Raises:
            anyjob.StoreError: The store failed (the cause chained); nothing changed.
        """
        ...

    async def renew_lease(self, origin: str, lease: float) -> None:
        """Record that the manager *origin* is alive for *lease* more seconds.

        The lease expires at "now + *lease*" by **the store's clock** (the database's in a
        database, so managers on machines whose clocks disagree compare one time); a renewal
        replaces the previous expiry. A manager renews well before its lease runs out
        (a third of it, say); once it has run out, :meth:`recover_lost` of another manager
        may resolve its jobs. Nothing goes on the feeds.

        Raises:
            TypeError: *lease* is not a number.
            ValueError: *origin* is ``""`` or ``"<external>"``, or *lease* is not positive
                and finite.
            anyjob.StoreError: The store failed (the cause chained).
        """
        ...

    async def release_lease(self, origin: str) -> None:
        """Delete *origin*'s lease: a clean close (a no-op without one).

        Its waiting records are then anyone's at once (:meth:`claim_waiting`); its records
        still executing are never resolved by :meth:`recover_lost` (no lease runs out), so a
        manager ends or hands back its running jobs before it releases its lease.

        Raises:
            anyjob.StoreError: The store failed (the cause chained).
        """
        ...

    async def recover_lost(self, *, origin: str, resumable: Collection[str]) -> list[str]:
        """Resolve the jobs of every manager whose lease ran out; returns the ids whose state changed.

        A lease is lost when its expiry is before the store's now; *origin*'s own never
        counts (even expired: it is asking, so it is alive). Atomically (one transaction in
        a database), for every record a lost manager owns, with ``now`` the store's clock:

        * ``RUNNING`` with ``cancel_requested``, and ``CANCELING``: ``CANCELED``, ``ended = now``;
        * ``RUNNING`` whose ``function`` is in *resumable*: back to ``CREATED`` to run again,
          owned by nobody (``owner`` ``""``, so any manager may take it with
          :meth:`claim_waiting`), ``scheduled = now``; ``started``, ``ended``, ``message``,
          ``result``, ``error``, ``error_type``, ``traceback`` and ``updated`` cleared,
          ``progress`` 0, ``cancel_requested`` ``False``, ``attempts`` kept;
        * any other ``RUNNING`` one: ``FAILED``, ``ended = now``, with ``error_type``
          ``"JobLostError"`` and ``error`` ``"its manager stopped renewing its lease (lost)"``;
        * ``CREATED``: owned by nobody (``owner`` ``""``, waiting for anyone; its state
          unchanged, so its id is not returned).

        Then the lost leases are deleted. Records of owners that never had a lease (an older
        anyjob, a manager that never renewed one), external jobs (``owner``
        ``"<external>"``) and done records are never touched. Like any write, each change
        reaches the feeds of origins other than *origin* (an end as the record's end).
        A manager calls this every round of its upkeep, so it is cheap when no lease
        ran out (one read of the few leases).

        Args:
            origin: The id of the manager asking (its own feed is not told).
            resumable: The ``function`` names any manager can run again (registered by name).

        Raises:
            anyjob.StoreError: The store failed (the cause chained); nothing changed.
        """
        ...

    async def claim_waiting(
        self, functions: Collection[str], *, origin: str, limit: int, grace: float
    ) -> list[JobRecord]:
        """Take up to *limit* waiting records for the manager *origin*; returns copies of them.

        Atomically (one transaction in a database; exactly once: two managers asking at
        the same time never both get a record), each record taken gets ``owner = origin``
        and stays ``CREATED`` (the manager then claims it to run as its own). A record is
        taken when it is ``CREATED``, its ``function`` is in *functions*, it is due
        (``scheduled`` at or before the store's now), its owner is neither *origin* nor
        ``"<external>"``, and either its owner has no live lease (``""``, an owner whose
        lease ran out or was released, or one that never had a lease) or it has been due
        for at least *grace* seconds (a busy manager's backlog is shared). Highest
        ``priority`` first, then the oldest ``scheduled``, then the id; the records
        are returned in that order. Each change reaches the feeds of origins other than
        *origin* (the former owner learns that its record was taken).

        Args:
            functions: The ``function`` names *origin* can run.
            origin: The id of the manager taking them.
            limit: At most this many (``0`` or less: none).
            grace: Seconds a live owner's due record waits before another manager may take
                it (``math.inf``: never).

        Raises:
            TypeError: *limit* is not an int, or *grace* not a number.
            ValueError: *grace* is negative or NaN.
            anyjob.StoreError: The store failed (the cause chained); nothing taken.
        """
        ...

    def subscribe(self, origin: str) -> StoreFeed:
        """Subscribe to the changes made by every origin other than *origin*.

        Synchronous and without I/O (it may be called on the event loop): a durable
        store reads what it needs in :meth:`open` or in the feed's iterator.
        """
        ...


@runtime_checkable
class InsertMany(Protocol):
    """A :class:`Store` that adds many records in one write (``JobManager.submit_many`` uses it).

    Optional: not a member of :class:`Store`, so a store without it is still one.
    """

    async def insert_many(self, records: Sequence[JobRecord], *, origin: str | None = None) -> None:
        """Add new records in one transaction: all of them or, on an error, none.

        As :meth:`Store.insert` for each, in order: the store takes ownership of them,
        and each change goes to the feeds of every origin but *origin* (by default the
        record's ``owner``). An empty *records* writes nothing.

        Raises:
            anyjob.JobError: A record with one of those ids exists, or two share one
                (:func:`check_new_ids`); nothing is added.
            anyjob.StoreError: The store failed (the cause chained); nothing is added.
        """
        ...
