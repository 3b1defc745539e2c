"""PostgresStore: job records in PostgreSQL, shared by the managers of many processes and machines."""

from __future__ import annotations

import math
import re
import zlib
from typing import Any, Final, final

from anyjob._exceptions import StoreError
from anyjob.stores._connection import (
    FINAL_COLUMN,
    JOB_COLUMNS,
    LATE_SCHEMA,
    SCHEMA_VERSION,
    Connection,
    schema_statements,
)
from anyjob.stores._notice import Listener
from anyjob.stores._sql import SQLStore

__all__ = ["PostgresStore"]

_IDENTIFIER: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_TYPES: Final = {"real": "DOUBLE PRECISION", "serial": "BIGSERIAL PRIMARY KEY", "id": 'TEXT COLLATE "C"'}
_TABLES: Final = schema_statements(**_TYPES)
#: The session-level advisory lock held while any anyjob process creates its schema and
#: tables (one fixed key: ``CREATE SCHEMA IF NOT EXISTS`` itself races without it).
_SETUP_LOCK: Final = zlib.crc32(b"anyjob: schema setup")


@final
class PostgresStore(SQLStore):
    """Job records in a PostgreSQL database: durable, shared by many processes and machines.

    The tables live in their own schema (``anyjob`` by default). Managers holding
    the same ``PostgresStore`` object learn of each other's writes at once; others
    (other processes, other machines) within milliseconds, through ``LISTEN``/``NOTIFY``
    on a second connection (a trigger on the change log notifies the schema's channel
    ``anyjob:SCHEMA`` with the writer's id), and by reading the change log every
    ``poll_interval`` seconds as the safety net (and after the listening connection was
    opened again). Writers take a transaction-level advisory lock, so change-log
    numbers follow commit order and no change is skipped by a feed.

    A lost connection is opened again at once, and a call that had not reached its
    ``COMMIT`` runs again on the new one. While the server stays unreachable, calls
    raise :class:`~anyjob.StoreError`; a manager keeps its running jobs running and
    writes what changed once the server answers, and the hooks hear
    ``anyjob.store_unavailable`` and ``anyjob.store_available`` once each.

    Needs the ``psycopg`` driver (``pip install 'anyjob[postgres]'``). Calls run in
    a worker thread on one connection (so it works on asyncio and trio alike).

    Leases: each manager keeps a lease in the database (:meth:`renew_lease`, by the
    database's clock); when a process dies its lease runs out, and another manager's
    :meth:`recover_lost` resolves its jobs. Waiting jobs are shared between managers
    (:meth:`claim_waiting`, exactly once).

    Connecting (in a worker thread, by :meth:`open` or the first call) is bounded
    by ``connect_timeout``; the schema and tables are created under a session-level
    advisory lock, so many processes may start at once on a new database. Every
    error of the database or the driver is raised as :class:`~anyjob.StoreError`,
    the ``psycopg`` exception chained.

    Args:
        dsn: A libpq connection string or URI (``postgresql://user@host/db``).
        schema: The schema holding the tables: lower-case letters, digits and ``_``.
        poll_interval: Seconds between reads of the change log, the safety net of
            ``LISTEN``/``NOTIFY``.
        connect_timeout: Seconds connecting and setting up the schema may take
            (libpq counts whole seconds, and at least 2).

    Raises:
        TypeError, ValueError: An invalid argument.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "anyjob",
        poll_interval: float = 1.0,
        connect_timeout: float = 10.0,
    ) -> None:
        if not isinstance(dsn, str):
            msg = f"dsn must be a str, not {type(dsn).__name__}"
            raise TypeError(msg)
        if not dsn:
            msg = "dsn must not be empty"
            raise ValueError(msg)
        if not isinstance(schema, str):
            msg = f"schema must be a str, not {type(schema).__name__}"
            raise TypeError(msg)
        if not _IDENTIFIER.fullmatch(schema):
            msg = f"schema must be lower-case letters, digits and _ (at most 63), got {schema!r}"
            raise ValueError(msg)
        super().__init__(poll_interval=poll_interval, connect_timeout=connect_timeout)
        self._dsn = dsn
        self._schema = schema
        # One advisory lock per schema: writers to other schemas do not wait for each other.
        self._lock_key = zlib.crc32(schema.encode())

    def __repr__(self) -> str:
        return f"<PostgresStore schema={self._schema!r}>"

    @property
    def schema(self) -> str:
        """The schema holding the tables."""
        return self._schema

    def _watcher(self) -> Listener:
        return Listener(self, self._listen)

    def _listen(self) -> Any:
        """A new connection listening to the schema's channel (in a worker thread)."""
        import psycopg  # noqa: PLC0415 - an optional dependency, loaded by _open already

        timeout = max(1, math.ceil(self.connect_timeout))
        connect: Any = psycopg.connect  # typed for literal SQL; the channel is checked text
        raw: Any = connect(self._dsn, autocommit=True, connect_timeout=timeout)
        try:
            raw.execute(f'LISTEN "{_channel(self._schema)}"')
        except BaseException:
            raw.close()
            raise
        return raw

    def _unreachable(self, error: BaseException) -> bool:
        import psycopg  # noqa: PLC0415 - loaded by _open already

        return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)

    def _open(self) -> Connection:
        try:
            import psycopg  # noqa: PLC0415 - an optional dependency
            from psycopg.rows import dict_row  # noqa: PLC0415
        except ImportError as exc:  # pragma: no cover - the dev environment has it
            msg = "PostgresStore needs the psycopg driver: pip install 'anyjob[postgres]'"
            raise StoreError(msg) from exc
        connect: Any = psycopg.connect  # typed for tuple rows; these are dicts
        raw: Any = connect(
            self._dsn,
            autocommit=True,
            row_factory=dict_row,
            connect_timeout=max(1, math.ceil(self.connect_timeout)),
        )
        try:
            self._prepare(raw)
        except BaseException:
            raw.close()
            raise
        return Connection(
            raw,
            # One round trip (a simple query of two statements, no parameters).
            begin=(f"BEGIN; SELECT pg_advisory_xact_lock({self._lock_key})",),
            begin_read="BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            translate=True,
            pipelined=True,
            greatest="GREATEST",
            lock_row=" FOR UPDATE",
            skip_locked=" FOR UPDATE SKIP LOCKED",
            indexed_by=False,
            now="CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)",
            integrity_errors=(psycopg.errors.UniqueViolation,),
            errors=(psycopg.Error,),
            usable=_usable,
        )

    def _prepare(self, raw: Any) -> None:
        """The schema and its tables, under a session-level advisory lock (one creator at a time)."""
        raw.execute(f"SET statement_timeout = {math.ceil(self.connect_timeout * 1000)}")  # the lock wait too
        raw.execute(f"SELECT pg_advisory_lock({_SETUP_LOCK})")
        try:
            raw.execute(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')
            raw.execute(f'SET search_path TO "{self._schema}"')
            with raw.transaction():
                self._create_tables(raw)
        finally:
            raw.execute(f"SELECT pg_advisory_unlock({_SETUP_LOCK})")
        raw.execute("RESET statement_timeout")

    def _create_tables(self, raw: Any) -> None:
        """Create what is missing; bring an older layout up to date; refuse tables made by a newer anyjob."""
        raw.execute("CREATE TABLE IF NOT EXISTS anyjob_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        row = raw.execute("SELECT value FROM anyjob_meta WHERE key = 'schema_version'").fetchone()
        version = 0 if row is None else int(row["value"])
        if version > SCHEMA_VERSION:
            msg = (
                f"schema {self._schema!r} holds anyjob tables of version {version}, newer than "
                f"this anyjob understands ({SCHEMA_VERSION}): upgrade anyjob to use it"
            )
            raise StoreError(msg)
        for statement in _TABLES:
            raw.execute(statement)
        if version < SCHEMA_VERSION:
            # Version 1 to 2: the change log's final column; 2 to 3: the jobs' new columns;
            # 3 to 4: the leases table and the waiting index (made by _TABLES above).
            raw.execute(f"ALTER TABLE anyjob_changes ADD COLUMN IF NOT EXISTS {FINAL_COLUMN}")
            for _, definition in JOB_COLUMNS:
                raw.execute(f"ALTER TABLE anyjob_jobs ADD COLUMN IF NOT EXISTS {definition.format(**_TYPES)}")
        for statement in LATE_SCHEMA:
            raw.execute(statement)
        self._create_trigger(raw)
        raw.execute(
            "INSERT INTO anyjob_meta (key, value) VALUES ('schema_version', %s) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            (str(SCHEMA_VERSION),),
        )

    def _create_trigger(self, raw: Any) -> None:
        """The trigger that notifies the schema's channel of every insert into the change log.

        Made once (existing, it is left alone: writers run it meanwhile). Its payload is
        the writer's origin (one per statement; PostgreSQL sends one notice per transaction
        and payload), so a feed skips its own manager's writes.
        """
        found = raw.execute(
            "SELECT 1 FROM pg_trigger WHERE tgname = 'anyjob_changes_notify'"
            " AND tgrelid = 'anyjob_changes'::regclass"
        ).fetchone()
        if found is not None:
            return
        raw.execute(_NOTIFY_FUNCTION.replace("{channel}", _channel(self._schema)))
        raw.execute(
            "CREATE TRIGGER anyjob_changes_notify AFTER INSERT ON anyjob_changes"
            " REFERENCING NEW TABLE AS anyjob_new_changes FOR EACH STATEMENT EXECUTE FUNCTION anyjob_notify()"
        )


#: The trigger function telling the listeners of {channel} (``anyjob:SCHEMA``) who wrote.
_NOTIFY_FUNCTION: Final = """
CREATE OR REPLACE FUNCTION anyjob_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{channel}', COALESCE((SELECT origin FROM anyjob_new_changes LIMIT 1), ''));
    RETURN NULL;
END
$$
"""


def _channel(schema: str) -> str:
    """The schema's notice channel (at most 63 bytes, as PostgreSQL's names)."""
    return f"anyjob:{schema}"[:63]


def _usable(raw: Any) -> bool:
    return not raw.closed and not raw.broken
