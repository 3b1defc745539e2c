"""The databases ``bench_peers`` runs in: one fresh PostgreSQL database per run, one fresh schema per sample.

Every sample (one contender, one measure, one round) gets a schema of its own, made
before and dropped after it, so no contender finds another's rows, indexes, triggers
or dead tuples; the database itself is made at the start of the run and dropped at
its end (its name carries the process id: two runs at once do not meet). Peers find
their schema through the connection's ``search_path`` (:func:`in_schema`), anyjob's
PostgresStore through its ``schema`` argument.

:func:`multiply` fills a store with finished jobs for the "jobs already in the store"
measure: it copies the rows of the jobs that really ran, with new ids, in one statement.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Generator
from typing import Any, Final

import anyio
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

#: The server (the tests' variable and default); the run makes its own database on it.
SERVER_DSN: Final = os.environ.get("ANYJOB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
#: Between two looks at a peer's table while waiting for its last job to be recorded.
POLL_SECONDS: Final = 0.005


def unreachable() -> str | None:
    """None when the server answers, else why not."""
    try:
        psycopg.connect(SERVER_DSN, connect_timeout=3).close()
    except psycopg.Error as exc:
        return str(exc).strip() or type(exc).__name__
    return None


@contextlib.contextmanager
def database() -> Generator[str, None, None]:
    """A new, empty database for this run (its DSN), dropped when the run ends."""
    name = f"anyjob_bench_peers_{os.getpid()}"
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(SERVER_DSN, autocommit=True) as admin:
        admin.execute(drop)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(SERVER_DSN, dbname=name)
    finally:
        with psycopg.connect(SERVER_DSN, autocommit=True) as admin:
            admin.execute(drop)


def in_schema(dsn: str, schema: str) -> str:
    """*dsn* with ``search_path`` set to *schema* (for the peers, which use unqualified names)."""
    return make_conninfo(dsn, options=f"-c search_path={schema}")


@contextlib.contextmanager
def schema(dsn: str, name: str) -> Generator[None, None, None]:
    """A new, empty schema *name* in *dsn*'s database for one sample, dropped after it."""
    drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(drop)
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(drop)


def database_name(dsn: str) -> str:
    """The database *dsn* names."""
    return str(conninfo_to_dict(dsn).get("dbname", "?"))


async def recorded(dsn: str, query: sql.SQL | sql.Composed) -> float:
    """Wait until *query* (giving one boolean: all recorded?) says true; when that was seen.

    The peers record a job's end in their own tables (pgqueuer buffers it first), so a
    lifecycle ends when the database says so, not when the job function returned. It
    asks on a connection of its own every :data:`POLL_SECONDS`: the figure is late by
    at most that much (and one query).
    """
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        while True:
            row = await (await conn.execute(query)).fetchone()
            if row is not None and row[0]:
                return time.perf_counter()
            await anyio.sleep(POLL_SECONDS)


# -- filling a store with finished jobs ------------------------------------------------


def _copies_sqlite(columns: list[str], factor: int) -> str:
    picked = ", ".join("id || '.' || copy_no" if name == "id" else name for name in columns)
    return (
        f"WITH RECURSIVE copies(copy_no) AS (SELECT 1 UNION ALL SELECT copy_no + 1 FROM copies "  # noqa: S608 - names read from the database
        f"WHERE copy_no < {factor}) "
        f"INSERT INTO anyjob_jobs ({', '.join(columns)}) SELECT {picked} FROM anyjob_jobs CROSS JOIN copies"
    )


def _copies_postgres(columns: list[str], factor: int) -> sql.Composed:
    picked = sql.SQL(", ").join(
        sql.SQL("id || '.' || copy_no::text") if name == "id" else sql.Identifier(name) for name in columns
    )
    return sql.SQL(
        "INSERT INTO anyjob_jobs ({}) SELECT {} FROM anyjob_jobs CROSS JOIN generate_series(1, {}) AS copy_no"
    ).format(sql.SQL(", ").join(map(sql.Identifier, columns)), picked, factor)


def multiply_sqlite(path: str, factor: int) -> int:
    """Copy every job row of the SQLite file ``factor - 1`` times over (new ids); the count after."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        columns = [str(row[1]) for row in conn.execute("PRAGMA table_info(anyjob_jobs)")]
        if factor > 1:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(_copies_sqlite(columns, factor - 1))
            conn.execute("COMMIT")
        return int(conn.execute("SELECT COUNT(*) FROM anyjob_jobs").fetchone()[0])
    finally:
        conn.close()


def multiply_postgres(dsn: str, schema_name: str, factor: int) -> int:
    """Copy every job row in *schema_name* ``factor - 1`` times over (new ids), then ``ANALYZE``.

    ``ANALYZE`` stands for the autovacuum a database that grew over days would have had.
    """
    with psycopg.connect(in_schema(dsn, schema_name), autocommit=True) as conn:
        rows: list[Any] = conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'anyjob_jobs' ORDER BY ordinal_position",
            (schema_name,),
        ).fetchall()
        columns = [str(row[0]) for row in rows]
        if factor > 1:
            conn.execute(_copies_postgres(columns, factor - 1))
        conn.execute("ANALYZE")
        count = conn.execute("SELECT COUNT(*) FROM anyjob_jobs").fetchone()
        return 0 if count is None else int(count[0])
