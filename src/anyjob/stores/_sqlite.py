"""SQLiteStore: job records in an SQLite database file, durable and shared through the file."""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Final, final

from anyjob._exceptions import StoreError
from anyjob.stores._connection import (
    FINAL_COLUMN,
    JOB_COLUMNS,
    LATE_SCHEMA,
    SCHEMA_VERSION,
    Connection,
    schema_statements,
    seconds,
)
from anyjob.stores._notice import DataVersion
from anyjob.stores._sql import SQLStore

_TYPES: Final = {"real": "REAL", "serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "id": "TEXT"}
_TABLES: Final = schema_statements(**_TYPES)

__all__ = ["SQLiteStore"]


#: The file's clock in POSIX seconds (``unixepoch('now', 'subsec')`` needs SQLite 3.42).
_NOW: Final = "((julianday('now') - 2440587.5) * 86400.0)"
#: The durability levels ``SQLiteStore(synchronous=...)`` takes.
_SYNCHRONOUS: Final = frozenset({"FULL", "NORMAL"})


@final
class SQLiteStore(SQLStore):
    """Job records in an SQLite database file: durable, embedded, no server.

    Records survive the process. Several managers may share one store: managers
    holding the same ``SQLiteStore`` object learn of each other's writes at once;
    managers in other processes (or holding another ``SQLiteStore`` on the same
    file) within milliseconds: while a manager waits for changes, the store watches
    the file's ``PRAGMA data_version`` (woken by inotify on Linux when the WAL is
    written to, else looked at every 5 ms), and it reads the change log every
    ``poll_interval`` seconds as the safety net. The database uses write-ahead
    logging, so readers do not block the writer.

    While the file stays write-locked by another process past ``busy_timeout`` (or
    cannot be opened), calls raise :class:`~anyjob.StoreError`; a manager keeps its
    running jobs running and writes what changed once the file is free again, and the
    hooks hear ``anyjob.store_unavailable`` and ``anyjob.store_available`` once each.

    Calls run in a worker thread (one connection, used by one thread at a time).
    A manager batches its writes, so a job costs a few of them, not one per change.

    Leases: each manager keeps a lease in the database (:meth:`renew_lease`, by the
    database's clock); when a process dies its lease runs out, and another manager's
    :meth:`recover_lost` resolves its jobs. Waiting jobs are shared between managers
    (:meth:`claim_waiting`, exactly once).

    Opening (in a worker thread, by :meth:`open` or the first call) creates the
    tables in one ``BEGIN IMMEDIATE`` transaction, so processes starting at once on
    a new file do not trip over each other. Every error of the database (a locked
    file past ``busy_timeout``, an unwritable path, a damaged file) is raised as
    :class:`~anyjob.StoreError`, the ``sqlite3`` exception chained.

    Args:
        path: The database file (created if missing), or ``":memory:"`` for a
            private in-memory database (not shared, not durable; for tests).
        poll_interval: Seconds between reads of the change log, the safety net of the
            change detection (which finds other processes' writes within milliseconds).
        connect_timeout: Seconds opening the file may wait for another writer
            (while it creates the tables, say).
        busy_timeout: Seconds any later call waits for another writer to release
            the file before it fails with :class:`~anyjob.StoreError`.
        synchronous: ``"FULL"`` (the default): a write the store acknowledged survives
            a power loss or an OS crash too. ``"NORMAL"``: faster writes, and still safe
            against a crash of the process, but the last acknowledged transactions may
            be undone by a power loss (SQLite's ``PRAGMA synchronous`` in WAL mode).

    Raises:
        TypeError, ValueError: An invalid argument.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        poll_interval: float = 1.0,
        connect_timeout: float = 10.0,
        busy_timeout: float = 30.0,
        synchronous: str = "FULL",
    ) -> None:
        if not isinstance(path, str | os.PathLike):
            msg = f"path must be a str or os.PathLike, not {type(path).__name__}"
            raise TypeError(msg)
        fs_path = os.fspath(path)
        if not isinstance(fs_path, str) or not fs_path:
            msg = f"path must be a non-empty str path, got {path!r}"
            raise ValueError(msg)
        if synchronous not in _SYNCHRONOUS:
            msg = f"synchronous must be 'FULL' or 'NORMAL', not {synchronous!r}"
            raise ValueError(msg)
        self._path = fs_path  # before the SQLStore's part: its watcher of changes needs it
        super().__init__(poll_interval=poll_interval, connect_timeout=connect_timeout)
        self.busy_timeout = seconds("busy_timeout", busy_timeout)
        self.synchronous = synchronous

    def __repr__(self) -> str:
        return f"<SQLiteStore {self._path!r}>"

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    def _unreachable(self, error: BaseException) -> bool:
        """A file another process holds locked past ``busy_timeout``."""
        text = str(error)
        return isinstance(error, sqlite3.OperationalError) and ("locked" in text or "busy" in text)

    def _watcher(self) -> DataVersion:
        return DataVersion(self, self._path)

    def _open(self) -> Connection:
        raw = sqlite3.connect(
            self._path, check_same_thread=False, isolation_level=None, timeout=self.connect_timeout
        )
        raw.row_factory = sqlite3.Row
        try:
            self._prepare(raw)
            raw.execute(f"PRAGMA busy_timeout = {round(self.busy_timeout * 1000)}")
        except BaseException:
            raw.close()
            raise
        return Connection(
            raw,
            begin=("BEGIN IMMEDIATE",),
            begin_read="BEGIN",  # deferred: the snapshot is taken by the first read (WAL)
            translate=False,
            pipelined=False,
            greatest="max",
            lock_row="",
            skip_locked="",  # one writer at a time (BEGIN IMMEDIATE): nothing to skip
            indexed_by=True,
            now=_NOW,
            integrity_errors=(sqlite3.IntegrityError,),
            errors=(sqlite3.Error,),
            usable=_usable,
        )

    def _prepare(self, raw: sqlite3.Connection) -> None:
        """WAL, and the tables in a new database (in one write transaction); refuse a newer layout.

        An older layout is brought up to date in place, in the same transaction.
        """
        if self._path != ":memory:":
            self._use_wal(raw)
        raw.execute(f"PRAGMA synchronous={self.synchronous}")  # one of _SYNCHRONOUS
        raw.execute("BEGIN IMMEDIATE")  # one creator at a time; the others wait, then find the tables
        try:
            version = raw.execute("PRAGMA user_version").fetchone()[0]
            self._check_version(version)
            for statement in _TABLES:  # all IF NOT EXISTS: cheap, and repairs a dropped table
                raw.execute(statement)
            if version < SCHEMA_VERSION:
                _migrate(raw)
                raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            for statement in LATE_SCHEMA:
                raw.execute(statement)
        except BaseException:
            raw.execute("ROLLBACK")
            raise
        raw.execute("COMMIT")

    def _use_wal(self, raw: sqlite3.Connection) -> None:
        """``PRAGMA journal_mode=WAL``, waiting up to ``connect_timeout`` for other openers.

        Switching a file to WAL needs it to itself, and SQLite answers "database is locked"
        at once, without its busy handler, while another process opening the same new file
        holds it (seen with four processes opening one file made by anyjob 1 at once).
        """
        deadline = time.monotonic() + self.connect_timeout
        pause = 0.005
        while True:
            try:
                raw.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)  # in the store's worker thread, never on the event loop
                pause = min(pause * 2, 0.1)
            else:
                return

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            msg = (
                f"{self._path!r} holds anyjob tables of version {version}, newer than this anyjob "
                f"understands ({SCHEMA_VERSION}): upgrade anyjob to use it"
            )
            raise StoreError(msg)


def _migrate(raw: sqlite3.Connection) -> None:
    """The columns an older layout misses (SQLite has no ``ADD COLUMN IF NOT EXISTS``).

    Version 1 to 2: the change log's ``final`` column; 2 to 3: the jobs' ``updated``,
    ``traceback`` and ``stale_after``; 3 to 4 added only a table and an index (made by
    the ``CREATE ... IF NOT EXISTS`` statements of the schema).
    """
    columns = {row[1] for row in raw.execute("PRAGMA table_info(anyjob_changes)")}
    if "final" not in columns:
        raw.execute(f"ALTER TABLE anyjob_changes ADD COLUMN {FINAL_COLUMN}")
    columns = {row[1] for row in raw.execute("PRAGMA table_info(anyjob_jobs)")}
    for name, definition in JOB_COLUMNS:
        if name not in columns:
            raw.execute(f"ALTER TABLE anyjob_jobs ADD COLUMN {definition.format(**_TYPES)}")


def _usable(raw: sqlite3.Connection) -> bool:
    try:
        raw.total_changes  # noqa: B018 - raises once the connection is closed
    except sqlite3.ProgrammingError:
        return False
    return True
