"""One DB-API connection with the drivers' differences in one place, transactions, the tables."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from typing import Any, Final

__all__: list[str] = []

#: Errors raised in the worker thread that are the database's (or its driver's) doing,
#: besides the driver's own exception classes: values the driver cannot bind.
BINDING_ERRORS: Final = (OverflowError, UnicodeError, RecursionError)
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
    cancel_requested INTEGER NOT NULL,
    updated {real},
    traceback TEXT,
    stale_after {real}
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
    at {real} NOT NULL,
    final TEXT
);
CREATE TABLE IF NOT EXISTS anyjob_leases (
    origin TEXT PRIMARY KEY,
    expires {real} NOT NULL
);
CREATE INDEX IF NOT EXISTS anyjob_jobs_waiting ON anyjob_jobs (priority DESC, scheduled, id, function, owner)
    WHERE state = 'created';
CREATE INDEX IF NOT EXISTS anyjob_jobs_live_by_owner ON anyjob_jobs (owner)
    WHERE state IN ('created', 'running', 'canceling');
"""


#: The layout of the tables, kept in the database. Version 2 added ``anyjob_changes.final``
#: (the row of a deleted job as JSON, so feeds tell how it ended); version 3 added
#: ``anyjob_jobs.updated``, ``traceback`` and ``stale_after`` (all nullable, so an older
#: anyjob still writing to the database leaves them ``NULL``); version 4 added the table
#: ``anyjob_leases`` (each manager's lease: ``origin``, ``expires`` by the database's clock)
#: and two partial indexes: ``anyjob_jobs_waiting`` (the waiting records in the order
#: ``claim_waiting`` takes them, with the columns it filters on, so records it passes over
#: are not read) and ``anyjob_jobs_live_by_owner`` (``recover_lost``'s records of a lost
#: manager); all in :data:`SCHEMA` (``IF NOT EXISTS``: nothing to alter). An older
#: database gets what it misses on opening (:data:`FINAL_COLUMN`, :data:`JOB_COLUMNS`, the
#: new table and indexes), under the same lock as the rest of the DDL, and then
#: :data:`LATE_SCHEMA`.
SCHEMA_VERSION: Final = 4
#: The column version 2 added to ``anyjob_changes`` (``ALTER TABLE ... ADD COLUMN`` this).
FINAL_COLUMN: Final = "final TEXT"
#: The columns version 3 added to ``anyjob_jobs``: name and definition (with {real}).
JOB_COLUMNS: Final = (
    ("updated", "updated {real}"),
    ("traceback", "traceback TEXT"),
    ("stale_after", "stale_after {real}"),
)
#: What needs the columns of the latest version (run after an upgrade, and on every opening):
#: the records ``expire_stale`` looks at, by state (few have ``stale_after``).
LATE_SCHEMA: Final = (
    "CREATE INDEX IF NOT EXISTS anyjob_jobs_stale ON anyjob_jobs (state) WHERE stale_after IS NOT NULL",
)


def schema_statements(**types: str) -> list[str]:
    """:data:`SCHEMA` with the given column types, one statement each."""
    return [statement for statement in SCHEMA.format(**types).split(";") if statement.strip()]


def seconds(name: str, value: object) -> float:
    """A positive, finite number of seconds given as argument *name*.

    Raises:
        TypeError: Not a number.
        ValueError: Not positive and finite.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"{name} must be a number of seconds, not {type(value).__name__}"
        raise TypeError(msg)
    if not 0 < value < math.inf:
        msg = f"{name} must be positive and finite, got {value!r}"
        raise ValueError(msg)
    return float(value)


class Connection:
    """A DB-API connection with what differs between the drivers in one place."""

    __slots__ = (
        "_begin",
        "_begin_read",
        "_indexed_by",
        "_pipelined",
        "_translate",
        "_usable",
        "committing",
        "errors",
        "greatest",
        "integrity_errors",
        "lock_row",
        "now",
        "raw",
        "skip_locked",
    )

    def __init__(
        self,
        raw: Any,
        *,
        begin: Sequence[str],
        begin_read: str,
        translate: bool,
        pipelined: bool,
        greatest: str,
        lock_row: str,
        skip_locked: str,
        now: str,
        indexed_by: bool,
        integrity_errors: tuple[type[BaseException], ...],
        errors: tuple[type[BaseException], ...],
        usable: Callable[[Any], bool],
    ) -> None:
        self.raw = raw
        self._begin = begin
        self._begin_read = begin_read  # a read-only transaction whose reads share one snapshot
        self._translate = translate  # "?" placeholders to "%s"
        self._pipelined = pipelined  # executemany sends its statements at once, results kept (psycopg)
        self.greatest = greatest  # the SQL function for the larger of two values
        self.lock_row = lock_row  # appended to a SELECT that reads a row it will update
        self.skip_locked = skip_locked  # appended to a SELECT that takes rows others may be taking
        self.now = now  # an SQL expression: the database's clock, in POSIX seconds
        self._indexed_by = indexed_by  # SQLite's INDEXED BY: planners without statistics guess
        self.integrity_errors = integrity_errors
        self.errors: tuple[type[BaseException], ...] = (*errors, *BINDING_ERRORS)  # what becomes a StoreError
        self._usable = usable
        #: Set as a transaction sends its ``COMMIT``: a lost connection then leaves unknown
        #: whether it was written (before, the database rolled it back: safe to run again).
        self.committing = False

    def _dialect(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._translate else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(self._dialect(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.raw.cursor().executemany(self._dialect(sql), rows)

    def rowcounts(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[int]:
        """Run *sql* once for each of *rows*, in order: how many rows each one changed.

        A driver that pipelines (psycopg) sends them all at once: one round trip for the
        lot instead of one each (measured: 300 updates in 10 ms instead of 78 ms).
        """
        if not self._pipelined:
            execute = self.raw.execute
            return [execute(sql, row).rowcount for row in rows]
        cursor = self.raw.cursor()
        cursor.executemany(self._dialect(sql), rows, returning=True)
        counts = [cursor.rowcount]
        while cursor.nextset():
            counts.append(cursor.rowcount)
        return counts

    def index_hint(self, index: str) -> str:
        """What follows a table's name to make the query read it through *index* ("" if unsupported).

        SQLite, whose files have no statistics unless ``ANALYZE`` ran, otherwise prefers an
        equality on any index to the partial index made for a query (measured: 80 times slower
        on 100k rows); PostgreSQL keeps statistics and picks it by itself.
        """
        return f" INDEXED BY {index}" if self._indexed_by else ""

    def begin(self) -> None:
        for statement in self._begin:
            self.raw.execute(statement)

    def begin_read(self) -> None:
        self.raw.execute(self._begin_read)

    def usable(self) -> bool:
        """Whether the connection can still be used (else the store opens a new one)."""
        return self._usable(self.raw)

    def close(self) -> None:
        with contextlib.suppress(*self.errors):  # closing a broken connection: it is gone either way
            self.raw.close()


def clock(conn: Connection) -> float:
    """The database's time now, in POSIX seconds rounded to whole microseconds (as records keep it)."""
    row = conn.execute(f"SELECT {conn.now} AS now").fetchone()
    return round(float(row["now"]) * 1_000_000) / 1_000_000


def head(conn: Connection) -> int:
    """The number of the change log's latest change (0 when empty)."""
    row = conn.execute("SELECT COALESCE(MAX(seq), 0) AS seq FROM anyjob_changes").fetchone()
    return int(row["seq"])


class transaction:  # noqa: N801 - used like a function
    """``BEGIN`` ... ``COMMIT`` (``ROLLBACK`` on an error) on an autocommit connection.

    Writers take the database's write lock as they begin (SQLite: ``BEGIN IMMEDIATE``;
    PostgreSQL: an advisory lock), so change-log numbers follow commit order.
    ``transaction(conn, read=True)`` only reads, every statement from one snapshot
    (SQLite: a deferred ``BEGIN`` in WAL mode; PostgreSQL: ``REPEATABLE READ``),
    without the write lock.
    """

    __slots__ = ("_conn", "_read")

    def __init__(self, conn: Connection, *, read: bool = False) -> None:
        self._conn = conn
        self._read = read

    def __enter__(self) -> None:
        if self._read:
            self._conn.begin_read()
        else:
            self._conn.begin()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        conn = self._conn
        if exc_type is None:
            conn.committing = not self._read
            try:
                conn.execute("COMMIT")
            except BaseException:
                # SQLite keeps a transaction open after a busy COMMIT: end it, or the next BEGIN fails.
                with contextlib.suppress(*conn.errors):
                    conn.execute("ROLLBACK")
                raise
            return
        with contextlib.suppress(*conn.errors):  # a lost connection: its own error is raised
            conn.execute("ROLLBACK")
