"""What SQLiteStore and PostgresStore share: records in SQL tables, a change log, calls in a thread.

Each store holds one connection of a synchronous DB-API driver (sqlite3, psycopg),
used from a worker thread under a lock, so the stores work alike on asyncio and
trio. SQL is written once with ``?`` placeholders; a store for a driver with
another placeholder style translates it (see :meth:`_SQLStore._q`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final, TypeVar, final

import anyio
import anyio.to_thread
import attrs

from anyjob._exceptions import JobError
from anyjob._records import JobInfo, JobRecord, JobStatistics, now_timestamp
from anyjob._signal import Signal
from anyjob._state import State
from anyjob.stores._base import JobQuery, RecordUpdate, StoreChange

__all__: list[str] = []

T = TypeVar("T")

_DONE: Final = (State.SUCCEEDED.value, State.FAILED.value, State.CANCELED.value)
_ACTIVE: Final = (State.CREATED, State.RUNNING, State.CANCELING)
_STATE_BY_VALUE: Final = {state.value: state for state in State}
_FIELDS: Final = tuple(field.name for field in attrs.fields(JobRecord))
_JSON_FIELDS: Final = frozenset({"labels", "params", "result"})
#: Changes older than this many seconds are forgotten (a feed polls far more often)...
_CHANGES_KEPT_FOR: Final = 600.0
#: ...by a write at most this many seconds after the last such trim.
_TRIM_EVERY: Final = 60.0

#: The tables, with {real} for the type of a float, {serial} for an auto-numbered key and
#: {id} for the type of a job id (compared byte by byte, as Python compares strings).
SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS anyjob_jobs (
    id {id} PRIMARY KEY,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    labels TEXT NOT NULL,
    params TEXT NOT NULL,
    priority INTEGER NOT NULL,
    created {real} NOT NULL,
    scheduled {real} NOT NULL,
    owner TEXT NOT NULL,
    function TEXT NOT NULL,
    progress {real} NOT NULL,
    message TEXT,
    result TEXT NOT NULL,
    error TEXT,
    error_type TEXT,
    attempts INTEGER NOT NULL,
    started {real},
    ended {real},
    cancel_requested INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS anyjob_jobs_by_state ON anyjob_jobs (state, created DESC, id DESC);
CREATE INDEX IF NOT EXISTS anyjob_jobs_by_name ON anyjob_jobs (name, created DESC, id DESC);
CREATE INDEX IF NOT EXISTS anyjob_jobs_by_created ON anyjob_jobs (created DESC, id DESC);
CREATE INDEX IF NOT EXISTS anyjob_jobs_by_ended ON anyjob_jobs (ended) WHERE ended IS NOT NULL;
CREATE TABLE IF NOT EXISTS anyjob_labels (
    job_id {id} NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (job_id, key)
);
CREATE INDEX IF NOT EXISTS anyjob_labels_by_pair ON anyjob_labels (key, value);
CREATE TABLE IF NOT EXISTS anyjob_changes (
    seq {serial},
    job_id TEXT NOT NULL,
    origin TEXT NOT NULL,
    at {real} NOT NULL
);
"""


#: The layout of the tables; kept in the database for later migrations.
SCHEMA_VERSION: Final = 1


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _to_row(record: JobRecord) -> tuple[Any, ...]:
    return tuple(_column(name, getattr(record, name)) for name in _FIELDS)


def _column(name: str, value: Any) -> Any:
    if name in _JSON_FIELDS:
        return _dumps(dict(value) if name == "labels" else value)
    if name == "state":
        return value.value
    if name == "cancel_requested":
        return int(value)
    return value


def _value(name: str, column: Any) -> Any:
    """The inverse of :func:`_column`."""
    if name in _JSON_FIELDS:
        value = json.loads(column)
        return MappingProxyType(value) if name == "labels" else value
    if name == "state":
        return _STATE_BY_VALUE[column]
    if name == "cancel_requested":
        return bool(column)
    return column


def _from_row(row: Any) -> JobRecord:
    return JobRecord(**{name: _value(name, row[name]) for name in _FIELDS})


def _filters(
    *,
    states: frozenset[State] | None = None,
    name: str | None = None,
    labels: Mapping[str, str] | None = None,
    created_after: float | None = None,
    created_before: float | None = None,
) -> tuple[str, list[Any]]:
    """A WHERE clause (possibly empty) and its parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    if states is not None:
        if not states:
            return " WHERE 1 = 0", []
        clauses.append(f"state IN ({','.join('?' * len(states))})")
        params.extend(state.value for state in states)
    if name is not None:
        clauses.append("name = ?")
        params.append(name)
    # Compared in whole microseconds, as JobQuery.matches does.
    if created_after is not None:
        clauses.append("CAST(round(created * 1000000) AS BIGINT) > ?")
        params.append(round(created_after * 1_000_000))
    if created_before is not None:
        clauses.append("CAST(round(created * 1000000) AS BIGINT) < ?")
        params.append(round(created_before * 1_000_000))
    for key, value in (labels or {}).items():
        clauses.append(
            "EXISTS (SELECT 1 FROM anyjob_labels l"
            " WHERE l.job_id = anyjob_jobs.id AND l.key = ? AND l.value = ?)"
        )
        params.extend((key, value))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


@final
class _Feed:
    """Changes other origins made, read from the database's change log.

    Writes through the same store object wake the feed at once;
    writes by other processes (or other store objects on the same file) are
    found by polling every ``poll_interval`` seconds.
    """

    __slots__ = ("_closed", "_last_seq", "_store", "_wakeup", "origin")

    def __init__(self, store: _SQLStore, origin: str, last_seq: int) -> None:
        self._store = store
        self.origin = origin
        self._last_seq = last_seq
        self._wakeup = Signal()
        self._closed = False

    def poke(self) -> None:
        self._wakeup.fire()

    def close(self) -> None:
        self._closed = True
        self._store._feeds = [feed for feed in self._store._feeds if feed is not self]
        self._wakeup.fire()

    async def __aiter__(self) -> AsyncIterator[list[StoreChange]]:
        store = self._store
        while not self._closed:
            last_seq, changes = await store._run(store._changes_since, self._last_seq, self.origin)
            self._last_seq = last_seq
            if changes:
                yield changes
                continue
            with anyio.move_on_after(store.poll_interval):
                await self._wakeup.wait()


class _Connection:
    """A DB-API connection with what differs between the drivers in one place."""

    __slots__ = ("_begin", "_translate", "greatest", "integrity_errors", "lock_row", "raw")

    def __init__(
        self,
        raw: Any,
        *,
        begin: Sequence[str],
        translate: bool,
        greatest: str,
        lock_row: str,
        integrity_errors: tuple[type[BaseException], ...],
    ) -> None:
        self.raw = raw
        self._begin = begin
        self._translate = translate  # "?" placeholders to "%s"
        self.greatest = greatest  # the SQL function for the larger of two values
        self.lock_row = lock_row  # appended to a SELECT that reads a row it will update
        self.integrity_errors = integrity_errors

    def _dialect(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._translate else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(self._dialect(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.raw.cursor().executemany(self._dialect(sql), rows)

    def begin(self) -> None:
        for statement in self._begin:
            self.raw.execute(statement)

    def close(self) -> None:
        self.raw.close()


def _nothing(conn: _Connection) -> None:
    """What :meth:`_SQLStore.open` runs: opening the connection is the point."""


class _SQLStore:
    """The Store protocol over SQL tables (see :class:`~anyjob.stores.SQLiteStore`).

    Subclasses open the connection (:meth:`_open`) and say how they are shown.
    """

    def __init__(self, *, poll_interval: float) -> None:
        if isinstance(poll_interval, bool) or not isinstance(poll_interval, int | float):
            msg = f"poll_interval must be a number of seconds, not {type(poll_interval).__name__}"
            raise TypeError(msg)
        if not 0 < poll_interval < float("inf"):
            msg = f"poll_interval must be positive and finite, got {poll_interval!r}"
            raise ValueError(msg)
        self.poll_interval = float(poll_interval)
        self._lock = threading.Lock()
        self._conn: _Connection | None = None
        self._feeds: list[_Feed] = []
        self._trimmed = 0.0  # when this store last trimmed the change log

    async def open(self) -> None:
        """Connect and create the schema if needed, in a worker thread (idempotent)."""
        await self._run(_nothing)

    def close(self) -> None:
        """Close the database connection (it opens again on the next call)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- the connection, in a worker thread -----------------------------------------

    def _open(self) -> _Connection:
        """Connect, and create the tables if needed."""
        raise NotImplementedError  # pragma: no cover - every store says how

    def _connection(self) -> _Connection:
        conn = self._conn
        if conn is None:
            conn = self._conn = self._open()
        return conn

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        def locked() -> T:
            with self._lock:
                return fn(self._connection(), *args)

        return await anyio.to_thread.run_sync(locked)

    def _changed(self, conn: _Connection, job_ids: Sequence[str], origin: str) -> None:
        """Log changes to *job_ids* by *origin* (inside the caller's transaction).

        Once a minute, the log also forgets what is older than ten minutes, so it does
        not grow with the number of jobs ever run.
        """
        at = time.time()
        conn.executemany(
            "INSERT INTO anyjob_changes (job_id, origin, at) VALUES (?, ?, ?)",
            [(job_id, origin, at) for job_id in job_ids],
        )
        if at - self._trimmed > _TRIM_EVERY:
            self._trimmed = at
            conn.execute("DELETE FROM anyjob_changes WHERE at < ?", (at - _CHANGES_KEPT_FOR,))

    def _poke(self, origin: str) -> None:
        for feed in self._feeds:
            if feed.origin != origin:
                feed.poke()

    # -- writing ----------------------------------------------------------------------

    async def insert(self, record: JobRecord) -> None:
        """Add a new record.

        Raises:
            JobError: A record with that id exists.
        """
        await self._run(self._insert, record)
        self._poke(record.owner)

    def _insert(self, conn: _Connection, record: JobRecord) -> None:
        row = _to_row(record)
        with _transaction(conn):
            try:
                conn.execute(
                    f"INSERT INTO anyjob_jobs ({','.join(_FIELDS)}) VALUES ({','.join('?' * len(_FIELDS))})",  # noqa: S608 - names from JobRecord
                    row,
                )
            except conn.integrity_errors:
                msg = f"a job with id {record.id!r} already exists"
                raise JobError(msg, job_id=record.id) from None
            _insert_labels(conn, record.id, record.labels)
            self._changed(conn, [record.id], record.owner)

    async def apply(self, updates: Sequence[RecordUpdate], *, origin: str) -> list[bool]:
        """Apply a batch of updates in order, in one transaction; for each, whether it applied."""
        for update in updates:
            unknown = set(update.fields) - set(_FIELDS) - {"id"}
            if unknown or "id" in update.fields:
                msg = f"cannot update {sorted(unknown or {'id'})} of a job record"
                raise ValueError(msg)
        if not updates:
            return []
        applied = await self._run(self._apply, updates, origin)
        self._poke(origin)
        return applied

    def _apply(self, conn: _Connection, updates: Sequence[RecordUpdate], origin: str) -> list[bool]:
        results: list[bool] = []
        changed: list[str] = []
        with _transaction(conn):
            for update in updates:
                names = list(update.fields)
                sql = f"UPDATE anyjob_jobs SET {', '.join(f'{name} = ?' for name in names)} WHERE id = ?"  # noqa: S608 - checked names
                params = [_column(name, update.fields[name]) for name in names]
                params.append(update.job_id)
                if update.expect is not None:
                    sql += f" AND state IN ({','.join('?' * len(update.expect))})"
                    params.extend(state.value for state in update.expect)
                ok = conn.execute(sql, params).rowcount == 1 if names else _exists(conn, update)
                results.append(ok)
                if ok and names:
                    if "labels" in update.fields:
                        _write_labels(conn, update.job_id, update.fields["labels"])
                    changed.append(update.job_id)
            if changed:
                self._changed(conn, changed, origin)
        return results

    async def request_cancel(self, job_id: str, *, origin: str) -> State | None:
        """Ask for a job to be canceled; returns its state before, or ``None`` if unknown."""
        before = await self._run(self._request_cancel, job_id, origin)
        if before is State.CREATED or before is State.RUNNING:
            self._poke(origin)
        return before

    def _request_cancel(self, conn: _Connection, job_id: str, origin: str) -> State | None:
        with _transaction(conn):
            row = conn.execute(
                f"SELECT state FROM anyjob_jobs WHERE id = ?{conn.lock_row}",  # noqa: S608 - a constant
                (job_id,),
            ).fetchone()
            if row is None:
                return None
            before = _STATE_BY_VALUE[row["state"]]
            if before is State.CREATED:
                conn.execute(
                    "UPDATE anyjob_jobs SET state = ?, ended = ?, cancel_requested = 1 WHERE id = ?",
                    (State.CANCELED.value, now_timestamp(), job_id),
                )
            elif before is State.RUNNING:
                conn.execute("UPDATE anyjob_jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
            else:
                return before
            self._changed(conn, [job_id], origin)
            return before

    async def delete_finished(self, ended_before: float) -> int:
        """Delete finished records that ended before this POSIX time; returns how many."""
        deleted = await self._run(self._delete_finished, ended_before)
        if deleted:
            self._poke("")
        return deleted

    def _delete_finished(self, conn: _Connection, ended_before: float) -> int:
        with _transaction(conn):
            done = ",".join("?" * len(_DONE))
            rows = conn.execute(
                f"DELETE FROM anyjob_jobs WHERE ended < ? AND state IN ({done}) RETURNING id",  # noqa: S608 - constants
                (ended_before, *_DONE),
            ).fetchall()
            ids = [row["id"] for row in rows]
            conn.executemany("DELETE FROM anyjob_labels WHERE job_id = ?", [(job_id,) for job_id in ids])
            if ids:
                self._changed(conn, ids, "")
        return len(ids)

    # -- reading ------------------------------------------------------------------------

    async def get(self, job_id: str) -> JobInfo | None:
        """A snapshot of one record, or ``None``."""
        record = await self._run(self._get_record, job_id)
        return None if record is None else record.info()

    async def get_record(self, job_id: str) -> JobRecord | None:
        """A copy of one record, or ``None``."""
        return await self._run(self._get_record, job_id)

    def _get_record(self, conn: _Connection, job_id: str) -> JobRecord | None:
        row = conn.execute("SELECT * FROM anyjob_jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _from_row(row)

    async def query(self, query: JobQuery) -> list[JobInfo]:
        """Matching records, newest first, paginated."""
        return await self._run(self._query, query)

    def _query(self, conn: _Connection, query: JobQuery) -> list[JobInfo]:
        where, params = _filters(
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
        return [_from_row(row).info() for row in rows]

    async def statistics(
        self, *, name: str | None = None, labels: Mapping[str, str] | None = None
    ) -> JobStatistics:
        """Counts over the matching records."""
        return await self._run(self._statistics, name, labels)

    def _statistics(
        self, conn: _Connection, name: str | None, labels: Mapping[str, str] | None
    ) -> JobStatistics:
        where, params = _filters(name=name, labels=labels)
        done = ",".join("?" * len(_DONE))
        rows = conn.execute(
            f"SELECT state, COUNT(*) AS n, "  # noqa: S608 - built from constants
            f"SUM(CASE WHEN state IN ({done}) AND started IS NOT NULL AND ended IS NOT NULL "
            f"THEN {conn.greatest}(ended - started, 0) END) AS duration_sum, "
            f"COUNT(CASE WHEN state IN ({done}) AND started IS NOT NULL AND ended IS NOT NULL "
            f"THEN 1 END) AS duration_count "
            f"FROM anyjob_jobs{where} GROUP BY state",
            [*_DONE, *_DONE, *params],
        ).fetchall()
        by_state = dict.fromkeys(State, 0)
        duration_sum = 0.0
        duration_count = 0
        for row in rows:
            by_state[_STATE_BY_VALUE[row["state"]]] = row["n"]
            duration_sum += row["duration_sum"] or 0.0
            duration_count += row["duration_count"]
        by_name = {
            row["name"]: row["n"]
            for row in conn.execute(
                f"SELECT name, COUNT(*) AS n FROM anyjob_jobs{where} GROUP BY name",  # noqa: S608 - built from constants
                params,
            )
        }
        succeeded = by_state[State.SUCCEEDED]
        finished = succeeded + by_state[State.FAILED] + by_state[State.CANCELED]
        return JobStatistics(
            total=sum(by_state.values()),
            by_state=by_state,
            by_name=by_name,
            active=sum(by_state[state] for state in _ACTIVE),
            success_rate=succeeded / finished if finished else 0.0,
            average_duration=duration_sum / duration_count if duration_count else 0.0,
        )

    # -- the change feed ------------------------------------------------------------------

    def subscribe(self, origin: str) -> _Feed:
        """Subscribe to the changes made by every origin other than *origin*, from now on."""
        with self._lock:
            row = (
                self._connection()
                .execute("SELECT COALESCE(MAX(seq), 0) AS seq FROM anyjob_changes")
                .fetchone()
            )
        feed = _Feed(self, origin, row["seq"])
        self._feeds.append(feed)
        return feed

    def _changes_since(self, conn: _Connection, last_seq: int, origin: str) -> tuple[int, list[StoreChange]]:
        rows = conn.execute(
            "SELECT seq, job_id, origin FROM anyjob_changes WHERE seq > ? ORDER BY seq", (last_seq,)
        ).fetchall()
        if not rows:
            return last_seq, []
        job_ids = list(dict.fromkeys(row["job_id"] for row in rows if row["origin"] != origin))
        changes: list[StoreChange] = []
        for job_id in job_ids:  # the latest state of each, in the order of their latest change
            record = self._get_record(conn, job_id)
            changes.append(
                StoreChange(
                    job_id=job_id,
                    info=None if record is None else record.info(),
                    cancel_requested=False if record is None else record.cancel_requested,
                    owner="" if record is None else record.owner,
                )
            )
        return rows[-1]["seq"], changes


class _transaction:  # noqa: N801 - used like a function
    """``BEGIN`` ... ``COMMIT`` (``ROLLBACK`` on an error) on an autocommit connection.

    Writers take the database's write lock as they begin (SQLite: ``BEGIN IMMEDIATE``;
    PostgreSQL: an advisory lock), so change-log numbers follow commit order.
    """

    __slots__ = ("_conn",)

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.begin()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _exists(conn: _Connection, update: RecordUpdate) -> bool:
    """An update with no fields applies when its record exists in an expected state."""
    row = conn.execute("SELECT state FROM anyjob_jobs WHERE id = ?", (update.job_id,)).fetchone()
    return row is not None and (update.expect is None or _STATE_BY_VALUE[row["state"]] in update.expect)


def _write_labels(conn: _Connection, job_id: str, labels: Mapping[str, str]) -> None:
    conn.execute("DELETE FROM anyjob_labels WHERE job_id = ?", (job_id,))
    _insert_labels(conn, job_id, labels)


def _insert_labels(conn: _Connection, job_id: str, labels: Mapping[str, str]) -> None:
    conn.executemany(
        "INSERT INTO anyjob_labels (job_id, key, value) VALUES (?, ?, ?)",
        [(job_id, key, value) for key, value in labels.items()],
    )
