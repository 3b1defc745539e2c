"""What SQLiteStore and PostgresStore share: records in SQL tables, a change log, calls in a thread.

Each store holds one connection of a synchronous DB-API driver (sqlite3, psycopg),
used from a worker thread under a lock, so the stores work alike on asyncio and
trio and the event loop never waits for the database. SQL is written once with
``?`` placeholders; a store for a driver with another placeholder style
translates it (see :class:`Connection`). Every driver error becomes a
:class:`~anyjob.StoreError` in ``SQLCalls._run`` (:mod:`anyjob.stores._sql_calls`), the one way
into the database.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Final

import anyio.lowlevel

from anyjob._exceptions import StoreError
from anyjob._kinds import EXTERNAL
from anyjob._records import JobInfo, JobRecord, JobStatistics, now_timestamp
from anyjob._state import State
from anyjob.stores import _changes, _sql_leases, _sql_writes
from anyjob.stores._base import JobQuery, RecordUpdate, check_claim, check_lease, check_new_ids
from anyjob.stores._changes import Feed, info_of, warn_undecodable
from anyjob.stores._connection import Connection, head, seconds, transaction
from anyjob.stores._notice import Notices
from anyjob.stores._rows import (
    DONE,
    FIELDS,
    count,
    filters,
    from_row,
)
from anyjob.stores._sql_calls import SQLCalls
from anyjob.stores._sql_writes import Told, state_of

__all__: list[str] = []

#: Changes older than this many seconds are forgotten (a feed polls far more often)...
_CHANGES_KEPT_FOR: Final = 600.0
#: ...by a write at most this many seconds after the last such trim.
_TRIM_EVERY: Final = 60.0
#: The fields an update may write (not the id).
_UPDATABLE: Final = frozenset(FIELDS) - {"id"}


class SQLStore(SQLCalls):
    """The Store protocol over SQL tables (see :class:`~anyjob.stores.SQLiteStore`).

    Subclasses open the connection (:meth:`_open`), say which errors mean the database
    cannot be reached (:meth:`_unreachable`), what notices other processes' writes
    (:meth:`_watcher`) and how they are shown.
    """

    def __init__(self, *, poll_interval: float, connect_timeout: float) -> None:
        super().__init__()
        self.poll_interval = seconds("poll_interval", poll_interval)
        self.connect_timeout = seconds("connect_timeout", connect_timeout)
        self._feeds: list[Feed] = []
        self._trimmed = 0.0  # when this store last trimmed the change log
        self._head: int | None = None  # the change log's latest number, as of the last look
        #: What notices other processes' writes while a feed waits.
        self._notices: Notices = self._watcher()

    async def open(self) -> None:
        """Connect and create the schema if needed, in a worker thread (idempotent).

        Raises:
            anyjob.StoreError: The database cannot be reached or set up within
                ``connect_timeout`` (the cause chained).
        """
        self._head = await self._run("read the change log", head, wrote=False)

    def close(self) -> None:
        """Close the database connections (they open again on the next call)."""
        self._notices.close()
        with self._lock:
            self._drop()

    # -- the connection, in a worker thread -----------------------------------------

    def _watcher(self) -> Notices:
        """What notices other processes' writes (see :mod:`anyjob.stores._notice`)."""
        raise NotImplementedError  # pragma: no cover - every store says how

    def _changed(
        self, conn: Connection, job_ids: Sequence[str], origin: str, finals: Sequence[str | None] = ()
    ) -> None:
        """Log changes to *job_ids* by *origin* (inside the caller's transaction).

        *finals*: for deleted jobs, their rows (:func:`~anyjob.stores._changes.final_of`).
        Once a minute, the log also forgets what is older than ten minutes, so it does
        not grow with the number of jobs ever run.
        """
        at = _changes.log(conn, job_ids, origin, finals)
        if at - self._trimmed > _TRIM_EVERY:
            self._trimmed = at
            conn.execute("DELETE FROM anyjob_changes WHERE at < ?", (at - _CHANGES_KEPT_FOR,))

    def _poke(self, origin: str) -> None:
        for feed in self._feeds:
            if feed.origin != origin:
                feed.poke()

    # -- writing ----------------------------------------------------------------------

    async def insert(self, record: JobRecord, *, origin: str | None = None) -> None:
        """Add a new record (feeds but *origin*'s are told; by default the record's owner).

        Raises:
            JobError: A record with that id exists.
            StoreError: The database failed (the cause chained).
        """
        await self.insert_many((record,), origin=origin)

    async def insert_many(self, records: Sequence[JobRecord], *, origin: str | None = None) -> None:
        """Add new records in one transaction, all or none (see ``InsertMany.insert_many``).

        One statement for the rows, one for their labels, one for the change log.

        Raises:
            JobError: A record with one of those ids exists, or two share one.
            StoreError: The database failed (the cause chained).
        """
        check_new_ids(records)
        told: Told = {}
        for record in records:
            told.setdefault(record.owner if origin is None else origin, []).append(record.id)
        if not told:
            return
        what = f"insert job {records[0].id!r}" if len(records) == 1 else f"insert {len(records)} jobs"
        await self._run(what, self._write, records, told, (), "", unsure=self._write_again)
        for writer in told:
            self._poke(writer)

    async def apply(self, updates: Sequence[RecordUpdate], *, origin: str) -> list[bool]:
        """Apply a batch of updates in order, in one transaction; for each, whether it applied.

        A stored cancel request turns an update's SUCCEEDED or FAILED into CANCELED
        (see :meth:`Store.apply <anyjob.stores.Store.apply>`).
        """
        _check_updates(updates)
        if not updates:
            return []
        what = f"update job {updates[0].job_id!r}" if len(updates) == 1 else f"update {len(updates)} jobs"
        applied = await self._run(what, self._write, (), {}, updates, origin)
        self._poke(origin)
        return applied

    async def write(
        self, records: Sequence[JobRecord], updates: Sequence[RecordUpdate], *, origin: str
    ) -> list[bool]:
        """New records and updates by *origin* in one transaction (see ``GroupWrite.write``).

        Raises:
            JobError: A record with one of those ids exists, or two share one.
            InsertedError: Written, but the answer was lost (the updates' outcomes unknown).
            StoreError: The database failed (the cause chained).
        """
        check_new_ids(records)
        _check_updates(updates)
        if not records and not updates:
            await anyio.lowlevel.checkpoint()
            return []
        told: Told = {origin: [record.id for record in records]} if records else {}
        what = f"write {len(records)} new jobs and {len(updates)} updates"
        applied = await self._run(
            what, self._write, records, told, updates, origin, unsure=self._write_again if records else None
        )
        self._poke(origin)
        return applied

    def _write(
        self,
        conn: Connection,
        records: Sequence[JobRecord],
        told: Told,
        updates: Sequence[RecordUpdate],
        origin: str,
    ) -> list[bool]:
        return _sql_writes.write(conn, records, told, updates, origin, log=self._changed)

    def _write_again(
        self,
        conn: Connection,
        records: Sequence[JobRecord],
        told: Told,
        updates: Sequence[RecordUpdate],
        origin: str,
    ) -> list[bool]:
        return _sql_writes.write_again(conn, records, told, updates, origin, log=self._changed)

    async def request_cancel(self, job_id: str, *, origin: str) -> State | None:
        """Ask for a job to be canceled; returns its state before, or ``None`` if unknown."""
        before = await self._run(f"request a cancel of job {job_id!r}", self._request_cancel, job_id, origin)
        if before is State.CREATED or before is State.RUNNING:
            self._poke(origin)
        return before

    def _request_cancel(self, conn: Connection, job_id: str, origin: str) -> State | None:
        with transaction(conn):
            row = conn.execute(
                f"SELECT state, cancel_requested, owner FROM anyjob_jobs WHERE id = ?{conn.lock_row}",  # noqa: S608 - a constant
                (job_id,),
            ).fetchone()
            if row is None:
                return None
            before = state_of(row, job_id)
            if before is State.CREATED:
                conn.execute(
                    "UPDATE anyjob_jobs SET state = ?, ended = ?, cancel_requested = 1 WHERE id = ?",
                    (State.CANCELED.value, now_timestamp(), job_id),
                )
            elif before is State.RUNNING:
                if row["cancel_requested"]:
                    return State.CANCELING  # asked already: on its way there
                # An external job (no manager runs it) becomes CANCELING, for its reporter to learn.
                state = State.CANCELING if row["owner"] == EXTERNAL else State.RUNNING
                conn.execute(
                    "UPDATE anyjob_jobs SET cancel_requested = 1, state = ? WHERE id = ?",
                    (state.value, job_id),
                )
            else:
                return before
            self._changed(conn, [job_id], origin)
            return before

    async def delete(self, job_id: str, *, origin: str) -> State | None:
        """Delete one record if it is done; returns the state it had, or ``None`` if unknown."""
        state = await self._run(f"delete job {job_id!r}", self._delete, job_id, origin)
        if state is not None and state.is_done:
            self._poke(origin)
        return state

    def _delete(self, conn: Connection, job_id: str, origin: str) -> State | None:
        with transaction(conn):
            row = conn.execute(
                f"SELECT * FROM anyjob_jobs WHERE id = ?{conn.lock_row}",  # noqa: S608 - a constant
                (job_id,),
            ).fetchone()
            if row is None:
                return None
            state = state_of(row, job_id)
            if state.is_done:
                conn.execute("DELETE FROM anyjob_jobs WHERE id = ?", (job_id,))
                conn.execute("DELETE FROM anyjob_labels WHERE job_id = ?", (job_id,))
                self._changed(conn, [job_id], origin, [_changes.final_of(row)])
            return state

    async def delete_finished(self, ended_before: float) -> int:
        """Delete finished records that ended before this POSIX time; returns how many."""
        deleted = await self._run("delete finished jobs", self._delete_finished, ended_before)
        if deleted:
            self._poke("")
        return deleted

    def _delete_finished(self, conn: Connection, ended_before: float) -> int:
        with transaction(conn):
            done = ",".join("?" * len(DONE))
            rows = conn.execute(
                f"DELETE FROM anyjob_jobs WHERE ended < ? AND state IN ({done}) RETURNING *",  # noqa: S608 - constants
                (ended_before, *DONE),
            ).fetchall()
            ids = [row["id"] for row in rows]
            conn.executemany("DELETE FROM anyjob_labels WHERE job_id = ?", [(job_id,) for job_id in ids])
            if ids:
                self._changed(conn, ids, "", [_changes.final_of(row) for row in rows])
        return len(ids)

    async def expire_stale(self, now: float, *, origin: str) -> list[str]:
        """End every record whose runner went silent past its ``stale_after``; returns their ids.

        See :meth:`Store.expire_stale <anyjob.stores.Store.expire_stale>`: one transaction,
        taken only when a first read (without the write lock) finds a stale record.
        """
        expired = await self._run(
            "end stale jobs", _sql_leases.expire_stale, now, origin, self._changed, wrote=False
        )
        if expired:
            self._poke(origin)
        return expired

    # -- leases and shared work ---------------------------------------------------------

    async def renew_lease(self, origin: str, lease: float) -> None:
        """Record that the manager *origin* is alive for *lease* more seconds (the database's clock).

        Raises:
            TypeError, ValueError: An invalid *origin* or *lease* (see :meth:`Store.renew_lease
                <anyjob.stores.Store.renew_lease>`).
            StoreError: The database failed (the cause chained).
        """
        check_lease(origin, lease)
        await self._run(f"renew the lease of {origin!r}", _sql_leases.renew_lease, origin, float(lease))

    async def release_lease(self, origin: str) -> None:
        """Delete *origin*'s lease (a clean close)."""
        await self._run(f"release the lease of {origin!r}", _sql_leases.release_lease, origin)

    async def recover_lost(self, *, origin: str, resumable: Collection[str]) -> list[str]:
        """Resolve the jobs of every manager whose lease ran out; returns the ids whose state changed.

        See :meth:`Store.recover_lost <anyjob.stores.Store.recover_lost>`: one transaction,
        taken only when a first read (without the write lock) finds a lease that ran out.
        """
        changed, logged = await self._run(
            "recover the jobs of lost managers",
            _sql_leases.recover_lost,
            origin,
            frozenset(resumable),
            self._changed,
            wrote=False,
        )
        if logged:
            self._poke(origin)
        return changed

    async def claim_waiting(
        self, functions: Collection[str], *, origin: str, limit: int, grace: float
    ) -> list[JobRecord]:
        """Take up to *limit* waiting records for *origin*; returns copies of them, in order.

        See :meth:`Store.claim_waiting <anyjob.stores.Store.claim_waiting>`: one transaction,
        taken only when a first read (without the write lock) finds a record to take. A
        record that cannot be decoded is not taken (a :class:`RuntimeWarning` names it).

        Raises:
            TypeError, ValueError: An invalid *limit* or *grace*.
            StoreError: The database failed (the cause chained).
        """
        check_claim(limit, grace)
        if limit <= 0 or not functions:
            return []
        taken, broken = await self._run(
            "take waiting jobs",
            _sql_leases.claim_waiting,
            sorted(set(functions)),
            origin,
            limit,
            float(grace),
            self._changed,
            [],  # the ids it writes: after a lost COMMIT, claim_again finds which were taken
            wrote=False,
            unsure=_sql_leases.claim_again,
        )
        warn_undecodable(broken)
        if taken:
            self._poke(origin)
        return taken

    # -- reading ------------------------------------------------------------------------

    async def get(self, job_id: str) -> JobInfo | None:
        """A snapshot of one record, or ``None``.

        Raises:
            StoreError: The database failed, or the record cannot be decoded.
        """
        record = await self._run(f"read job {job_id!r}", self._get_record, job_id, wrote=False)
        return None if record is None else info_of(record)

    async def get_record(self, job_id: str) -> JobRecord | None:
        """A copy of one record, or ``None``.

        Raises:
            StoreError: The database failed, or the record cannot be decoded.
        """
        return await self._run(f"read job {job_id!r}", self._get_record, job_id, wrote=False)

    def _get_record(self, conn: Connection, job_id: str) -> JobRecord | None:
        row = conn.execute("SELECT * FROM anyjob_jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else from_row(row)

    async def query(self, query: JobQuery) -> list[JobInfo]:
        """Matching records, newest first, paginated.

        A record that cannot be decoded is left out with a :class:`RuntimeWarning`.
        """
        infos, broken = await self._run("query jobs", self._query, query, wrote=False)
        warn_undecodable(broken)
        return infos

    def _query(self, conn: Connection, query: JobQuery) -> tuple[list[JobInfo], list[StoreError]]:
        where, params = filters(
            states=query.states,
            name=query.name,
            labels=query.labels,
            created_after=query.created_after,
            created_before=query.created_before,
        )
        rows = conn.execute(
            f"SELECT * FROM anyjob_jobs{where} ORDER BY created DESC, id DESC LIMIT ? OFFSET ?",  # noqa: S608 - built from constants
            [*params, query.limit, query.offset],
        ).fetchall()
        infos: list[JobInfo] = []
        broken: list[StoreError] = []
        for row in rows:
            try:
                infos.append(info_of(from_row(row)))
            except StoreError as exc:
                broken.append(exc)
        return infos, broken

    async def statistics(
        self, *, name: str | None = None, labels: Mapping[str, str] | None = None
    ) -> JobStatistics:
        """Counts over the matching records (in states this anyjob knows)."""
        return await self._run("count jobs", count, name, labels, wrote=False)

    # -- the change feed ------------------------------------------------------------------

    def subscribe(self, origin: str) -> Feed:
        """Subscribe to the changes made by every origin other than *origin*.

        No I/O here: the feed starts from the change log's position as :meth:`open`
        (or this store's latest poll) read it; before the store was opened, it reports
        the changes logged from two seconds before this call (by the writers' clocks).
        """
        feed = Feed(self, origin, self._head)
        self._feeds.append(feed)
        return feed


def _check_updates(updates: Sequence[RecordUpdate]) -> None:
    for update in updates:
        unknown = update.fields.keys() - _UPDATABLE
        if unknown:
            msg = f"cannot update {sorted(unknown)} of a job record"
            raise ValueError(msg)
