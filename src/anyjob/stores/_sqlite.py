"""SQLiteStore: job records in an SQLite database file, durable and shared through the file."""

from __future__ import annotations

import os
import sqlite3
from typing import final

from anyjob._exceptions import JobError
from anyjob.stores._sql import SCHEMA, SCHEMA_VERSION, _Connection, _SQLStore

__all__ = ["SQLiteStore"]


@final
class SQLiteStore(_SQLStore):
    """Job records in an SQLite database file: durable, embedded, no server.

    Records survive the process. Several managers may share one store: managers
    holding the same ``SQLiteStore`` object learn of each other's writes at once;
    managers in other processes (or holding another ``SQLiteStore`` on the same
    file) learn of them by polling the file's change log every ``poll_interval``
    seconds. The database uses write-ahead logging, so readers do not block the
    writer.

    Calls run in a worker thread (one connection, used by one thread at a time).
    A manager batches its writes, so a job costs a few of them, not one per change.

    Known limits: a job is run by the manager that submitted it (or retried it);
    jobs of a process that died stay as they were (``RUNNING`` too) until they
    are canceled or cleaned up.

    Args:
        path: The database file (created if missing), or ``":memory:"`` for a
            private in-memory database (not shared, not durable; for tests).
        poll_interval: Seconds between looks for other processes' changes.

    Raises:
        TypeError, ValueError: An invalid argument.
    """

    def __init__(self, path: str | os.PathLike[str], *, poll_interval: float = 0.2) -> None:
        if not isinstance(path, str | os.PathLike):
            msg = f"path must be a str or os.PathLike, not {type(path).__name__}"
            raise TypeError(msg)
        fs_path = os.fspath(path)
        if not isinstance(fs_path, str) or not fs_path:
            msg = f"path must be a non-empty str path, got {path!r}"
            raise ValueError(msg)
        super().__init__(poll_interval=poll_interval)
        self._path = fs_path

    def __repr__(self) -> str:
        return f"<SQLiteStore {self._path!r}>"

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    def _open(self) -> _Connection:
        raw = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None, timeout=30.0)
        raw.row_factory = sqlite3.Row
        try:
            self._prepare(raw)
        except BaseException:
            raw.close()
            raise
        return _Connection(
            raw,
            begin=("BEGIN IMMEDIATE",),
            translate=False,
            greatest="max",
            lock_row="",
            integrity_errors=(sqlite3.IntegrityError,),
        )

    def _prepare(self, raw: sqlite3.Connection) -> None:
        """WAL, and the tables in a new database; refuse one made by a newer anyjob."""
        if self._path != ":memory:":
            raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("PRAGMA synchronous=NORMAL")
        version = raw.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            msg = (
                f"{self._path!r} holds anyjob tables of version {version}, newer than this anyjob "
                f"understands ({SCHEMA_VERSION}): upgrade anyjob to use it"
            )
            raise JobError(msg)
        raw.executescript(SCHEMA.format(real="REAL", serial="INTEGER PRIMARY KEY AUTOINCREMENT", id="TEXT"))
        if version < SCHEMA_VERSION:
            raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
