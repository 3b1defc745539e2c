"""The SQL stores' upkeep: leases, lost managers' jobs, shared waiting jobs, stale records.

Each function runs on the store's connection in its worker thread (through
``SQLStore._run``, which turns a driver error into a StoreError) and logs what it changed
with *log* (``SQLStore._changed``) inside its own transaction. Times of leases are the
database's (:func:`~anyjob.stores._connection.clock`), so managers on machines whose
clocks disagree still agree on who is alive. A first read without the write lock finds
out whether there is anything to do: a manager calls these every round of its upkeep.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Final

from anyjob._exceptions import StoreError
from anyjob._kinds import EXTERNAL
from anyjob._records import JobRecord
from anyjob._state import State
from anyjob.stores._base import LOST_ERROR_TYPE, lease_lost_error, lost_error
from anyjob.stores._connection import Connection, clock, transaction
from anyjob.stores._rows import column, from_row

__all__: list[str] = []

#: ``SQLStore._changed``: log changes to these jobs by this origin (in the transaction).
Log = Callable[[Connection, Sequence[str], str], None]

_CREATED: Final = State.CREATED.value
_RUNNING: Final = State.RUNNING.value
_CANCELING: Final = State.CANCELING.value
_CANCELED: Final = State.CANCELED.value
_FAILED: Final = State.FAILED.value
#: The records expire_stale ends: watched, executing, silent too long (the partial index
#: anyjob_jobs_stale finds the first two among few rows).
_STALE: Final = (
    "FROM anyjob_jobs WHERE stale_after IS NOT NULL AND state IN (?, ?)"
    " AND COALESCE(updated, started, created) < ? - stale_after"
)
#: The records of a manager that may be resolved, written out as the partial index
#: anyjob_jobs_live_by_owner has it (so that both databases use it).
_LIVE: Final = "state IN ('created', 'running', 'canceling')"
#: The records claim_waiting takes, with {hint} (Connection.index_hint) and {functions}
#: placeholders; parameters: the functions, now, the taker, EXTERNAL, now - grace, now.
#: ``state = 'created'`` is written out so that both databases may use the partial index
#: anyjob_jobs_waiting (a bound state would not match its WHERE), whose order is the
#: claim's and which holds the columns filtered on.
_WAITING: Final = (
    "FROM anyjob_jobs{hint} WHERE state = 'created' AND function IN ({functions}) AND scheduled <= ?"
    " AND owner <> ? AND owner <> ?"
    " AND (scheduled <= ? OR NOT EXISTS (SELECT 1 FROM anyjob_leases"
    " WHERE anyjob_leases.origin = anyjob_jobs.owner AND anyjob_leases.expires >= ?))"
)
CLAIM_ORDER: Final = " ORDER BY priority DESC, scheduled, id"
#: A lost manager's running job, back to waiting for anyone (parameters: now, the id).
_RESUME: Final = (
    "UPDATE anyjob_jobs SET state = 'created', owner = '', scheduled = ?, started = NULL,"
    " ended = NULL, progress = 0, message = NULL, result = ?, error = NULL, error_type = NULL,"
    " traceback = NULL, updated = NULL, cancel_requested = 0 WHERE id = ?"
)

#: A lost job's end (parameters: state, error, error_type, ended, the id).
_END_LOST: Final = "UPDATE anyjob_jobs SET state = ?, error = ?, error_type = ?, ended = ? WHERE id = ?"


def waiting(
    conn: Connection, functions: Sequence[str], origin: str, now: float, grace: float
) -> tuple[str, tuple[object, ...]]:
    """The FROM and WHERE of the records *origin* may take, and their parameters."""
    hint = conn.index_hint("anyjob_jobs_waiting")
    sql = _WAITING.format(hint=hint, functions=",".join("?" * len(functions)))
    return sql, (*functions, now, origin, EXTERNAL, now - grace, now)


def renew_lease(conn: Connection, origin: str, lease: float) -> None:
    conn.execute(
        f"INSERT INTO anyjob_leases (origin, expires) VALUES (?, {conn.now} + ?)"  # noqa: S608 - a constant
        " ON CONFLICT (origin) DO UPDATE SET expires = excluded.expires",
        (origin, lease),
    )


def release_lease(conn: Connection, origin: str) -> None:
    conn.execute("DELETE FROM anyjob_leases WHERE origin = ?", (origin,))


def recover_lost(
    conn: Connection, origin: str, resumable: Collection[str], log: Log
) -> tuple[list[str], bool]:
    """Resolve the records of managers whose lease ran out; their leases deleted.

    Returns the ids whose state changed, and whether anything was logged.
    """
    now = clock(conn)
    expired = "SELECT origin FROM anyjob_leases WHERE expires < ? AND origin <> ?"
    if conn.execute(f"{expired} LIMIT 1", (now, origin)).fetchone() is None:
        return [], False
    with transaction(conn):
        # Locked: a renewal of one of them waits, then finds it gone (and inserts it anew).
        found = [row["origin"] for row in conn.execute(f"{expired}{conn.lock_row}", (now, origin)).fetchall()]
        if not found:
            return [], False
        marks = ",".join("?" * len(found))
        conn.execute(f"DELETE FROM anyjob_leases WHERE origin IN ({marks})", found)  # noqa: S608 - placeholders
        lost = [name for name in found if name and name != EXTERNAL]  # never anyone's: nothing to resolve
        if not lost:
            return [], False
        marks = ",".join("?" * len(lost))
        rows = conn.execute(
            f"SELECT id, state, function, cancel_requested FROM anyjob_jobs"  # noqa: S608 - placeholders
            f" WHERE owner IN ({marks}) AND {_LIVE}{conn.lock_row}",
            lost,
        ).fetchall()
        waiting: list[tuple[str]] = []
        canceled: list[tuple[str, float, str]] = []
        resumed: list[tuple[float, str, str]] = []
        failed: list[tuple[str, str, str, float, str]] = []
        for row in rows:
            state = row["state"]
            if state == _CREATED:
                waiting.append((row["id"],))
                continue
            if state == _CANCELING or row["cancel_requested"]:
                canceled.append((_CANCELED, now, row["id"]))
            elif row["function"] in resumable:
                resumed.append((now, column("result", None), row["id"]))
            else:
                failed.append((_FAILED, lease_lost_error(), LOST_ERROR_TYPE, now, row["id"]))
        conn.executemany("UPDATE anyjob_jobs SET owner = '' WHERE id = ?", waiting)
        conn.executemany("UPDATE anyjob_jobs SET state = ?, ended = ? WHERE id = ?", canceled)
        conn.executemany(_RESUME, resumed)
        conn.executemany(_END_LOST, failed)
        touched = [row["id"] for row in rows]
        if touched:
            log(conn, touched, origin)
    return [row["id"] for row in rows if row["state"] != _CREATED], bool(touched)


def claim_waiting(  # noqa: PLR0917 - SQLStore._run passes them by position
    conn: Connection,
    functions: Sequence[str],
    origin: str,
    limit: int,
    grace: float,
    log: Log,
    tried: list[str],
) -> tuple[list[JobRecord], list[StoreError]]:
    """Take up to *limit* waiting records for *origin*, in the claim's order.

    Returns them (``owner`` set) and the errors of those that could not be decoded (not
    taken). Exactly once: the write lock (SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's
    advisory lock) orders the takers, and the rows read are locked (``SKIP LOCKED``).
    *tried* is given the ids it writes, before its ``COMMIT`` (see :func:`claim_again`).
    """
    now = clock(conn)
    where, params = waiting(conn, functions, origin, now, grace)
    if conn.execute(f"SELECT 1 AS found {where} LIMIT 1", params).fetchone() is None:
        return [], []
    taken: list[JobRecord] = []
    broken: list[StoreError] = []
    with transaction(conn):
        rows = conn.execute(
            f"SELECT * {where}{CLAIM_ORDER} LIMIT ?{conn.skip_locked}", (*params, limit)
        ).fetchall()
        for row in rows:
            try:
                record = from_row(row)
            except StoreError as exc:
                broken.append(exc)  # left where it is, for its get() to tell what is wrong
                continue
            record.owner = origin
            taken.append(record)
        if taken:
            ids = [record.id for record in taken]
            tried[:] = ids
            conn.executemany(
                "UPDATE anyjob_jobs SET owner = ? WHERE id = ?", [(origin, job_id) for job_id in ids]
            )
            log(conn, ids, origin)
    return taken, broken


def claim_again(  # noqa: PLR0917 - SQLStore._run passes them by position
    conn: Connection,
    functions: Sequence[str],
    origin: str,
    limit: int,
    grace: float,
    log: Log,
    tried: list[str],
) -> tuple[list[JobRecord], list[StoreError]]:
    """:func:`claim_waiting` again after its ``COMMIT`` was lost: what it took, if it was written.

    The records it tried that are *origin*'s and still waiting were taken by that commit
    (a claim never takes *origin*'s own); none: it was not written, and is tried anew.
    """
    if tried:
        marks = ",".join("?" * len(tried))
        rows = conn.execute(
            f"SELECT * FROM anyjob_jobs WHERE id IN ({marks}) AND owner = ? AND state = 'created'"  # noqa: S608 - placeholders
            f"{CLAIM_ORDER}",
            (*tried, origin),
        ).fetchall()
        if rows:
            return [from_row(row) for row in rows], []
    return claim_waiting(conn, functions, origin, limit, grace, log, tried)


def expire_stale(conn: Connection, now: float, origin: str, log: Log) -> list[str]:
    """End the records whose runner went silent past their ``stale_after``; returns their ids."""
    executing = (_RUNNING, _CANCELING)
    if conn.execute(f"SELECT 1 AS found {_STALE} LIMIT 1", (*executing, now)).fetchone() is None:
        return []
    with transaction(conn):
        rows = conn.execute(
            f"SELECT id, state, stale_after, cancel_requested {_STALE}{conn.lock_row}",
            (*executing, now),
        ).fetchall()
        lost: list[tuple[str, str, str, float, str]] = []
        canceled: list[tuple[str, float, str]] = []
        for row in rows:
            if row["state"] == _RUNNING:
                end = _CANCELED if row["cancel_requested"] else _FAILED
                lost.append((end, lost_error(float(row["stale_after"])), LOST_ERROR_TYPE, now, row["id"]))
            else:
                canceled.append((_CANCELED, now, row["id"]))
        conn.executemany(_END_LOST, lost)
        conn.executemany("UPDATE anyjob_jobs SET state = ?, ended = ? WHERE id = ?", canceled)
        expired = [row["id"] for row in rows]
        if expired:
            log(conn, expired, origin)
    return expired
