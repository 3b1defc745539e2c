"""The SQL stores' writes of job records: new rows and updates, together in one transaction.

Each function runs on the store's connection in its worker thread (through
``SQLStore._run``, which turns a driver error into a StoreError) and logs what it changed
with *log* (``SQLStore._changed``) inside the transaction. :func:`write` is the one
transaction behind ``insert``, ``insert_many``, ``apply`` and ``write`` (a manager's group
commit: the new jobs of its submitters, the claims of its workers and the ends of its jobs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from anyjob._exceptions import JobError, StoreError
from anyjob._records import JobRecord
from anyjob._state import State
from anyjob.stores._base import RecordUpdate
from anyjob.stores._connection import Connection, transaction
from anyjob.stores._grouped import InsertedError
from anyjob.stores._rows import FIELDS, STATE_BY_VALUE, statement_runs, to_row, update_statement

__all__: list[str] = []

#: ``SQLStore._changed``: log changes to these jobs by this origin (in the transaction).
Log = Callable[[Connection, Sequence[str], str], None]
#: The ids of a batch each origin inserted (its change-log rows).
Told = dict[str, list[str]]

_INSERT_JOB: Final = f"INSERT INTO anyjob_jobs ({','.join(FIELDS)}) VALUES ({','.join('?' * len(FIELDS))})"  # noqa: S608 - names from JobRecord
_INSERT_LABEL: Final = "INSERT INTO anyjob_labels (job_id, key, value) VALUES (?, ?, ?)"
#: At most this many ``?`` in one ``IN (...)`` (well below SQLite's and PostgreSQL's limits).
_IDS_PER_QUERY: Final = 500


def write(
    conn: Connection,
    records: Sequence[JobRecord],
    told: Told,
    updates: Sequence[RecordUpdate],
    origin: str,
    *,
    log: Log,
) -> list[bool]:
    """Insert *records* (their changes logged as *told* says), then apply *updates* by *origin*.

    One transaction, all or nothing; for each update, whether it applied.

    Raises:
        JobError: A record with one of those ids exists (rolled back: nothing is written).
    """
    try:
        with transaction(conn):
            if records:
                _insert_rows(conn, records, told, log)
            return _apply_rows(conn, updates, origin, log) if updates else []
    except conn.integrity_errors:  # rolled back: the ids that are taken can be read now
        job_id = records[0].id if len(records) == 1 else _taken(conn, records)
        msg = f"a job with id {job_id!r} already exists"
        raise JobError(msg, job_id=job_id) from None


def write_again(
    conn: Connection,
    records: Sequence[JobRecord],
    told: Told,
    updates: Sequence[RecordUpdate],
    origin: str,
    *,
    log: Log,
) -> list[bool]:
    """:func:`write` after a lost ``COMMIT`` (called only with *records*).

    The transaction is atomic, so its first record tells whether it was written: if its
    row is that record's (owner and creation time), it was, and so were the updates,
    though whether each applied cannot be known now (:class:`InsertedError`); if not,
    nothing was, and it runs again.
    """
    first = records[0]
    row = conn.execute("SELECT owner, created FROM anyjob_jobs WHERE id = ?", (first.id,)).fetchone()
    if row is not None and row["owner"] == first.owner and row["created"] == first.created:
        if not updates:
            return []
        msg = f"the answer to writing {len(records)} new jobs and {len(updates)} updates was lost"
        raise InsertedError(msg)
    return write(conn, records, told, updates, origin, log=log)


def _insert_rows(conn: Connection, records: Sequence[JobRecord], told: Told, log: Log) -> None:
    if len(records) == 1:  # submit's path: one statement, without executemany's setup
        conn.execute(_INSERT_JOB, to_row(records[0]))
    else:
        conn.executemany(_INSERT_JOB, [to_row(record) for record in records])
    conn.executemany(
        _INSERT_LABEL, [(record.id, key, value) for record in records for key, value in record.labels.items()]
    )
    for writer, job_ids in told.items():
        log(conn, job_ids, writer)


def _apply_rows(conn: Connection, updates: Sequence[RecordUpdate], origin: str, log: Log) -> list[bool]:
    results: list[bool] = []
    changed: list[str] = []
    # Consecutive updates of one statement (a batch's claims, its ends) run at once.
    for run in statement_runs(updates):
        if isinstance(run, RecordUpdate):
            ok = _apply_one(conn, run)
            results.append(ok)
            if ok and run.fields:
                changed.append(run.job_id)
            continue
        sql, each = run
        counts = conn.rowcounts(sql, [params for _, params in each])
        for (update, _), count in zip(each, counts, strict=True):
            results.append(count == 1)
            if count == 1:
                changed.append(update.job_id)
    if changed:
        log(conn, changed, origin)
    return results


def _apply_one(conn: Connection, update: RecordUpdate) -> bool:
    """An update with nothing to write (whether it would apply), or one with labels."""
    if not update.fields:
        return _exists(conn, update)
    sql, params = update_statement(update)
    ok: bool = conn.execute(sql, params).rowcount == 1
    if ok:
        write_labels(conn, update.job_id, update.fields["labels"])
    return ok


def state_of(row: Any, job_id: str) -> State:
    """The state a row holds.

    Raises:
        StoreError: One this anyjob does not know (the job's id set).
    """
    try:
        return STATE_BY_VALUE[row["state"]]
    except KeyError as exc:
        msg = f"cannot decode the stored state of job {job_id!r}: {row['state']!r}"
        raise StoreError(msg, job_id=job_id) from exc


def _exists(conn: Connection, update: RecordUpdate) -> bool:
    """An update with no fields applies when its record exists in an expected state."""
    row = conn.execute("SELECT state, owner FROM anyjob_jobs WHERE id = ?", (update.job_id,)).fetchone()
    return (
        row is not None
        and (update.expect is None or state_of(row, update.job_id) in update.expect)
        and (update.owner is None or row["owner"] == update.owner)
    )


def write_labels(conn: Connection, job_id: str, labels: Mapping[str, str]) -> None:
    """Replace the labels of *job_id* (in the caller's transaction)."""
    conn.execute("DELETE FROM anyjob_labels WHERE job_id = ?", (job_id,))
    conn.executemany(_INSERT_LABEL, [(job_id, key, value) for key, value in labels.items()])


def _taken(conn: Connection, records: Sequence[JobRecord]) -> str:
    """The first id of *records* a stored job has (the first of all if none has, now)."""
    ids = [record.id for record in records]
    for start in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[start : start + _IDS_PER_QUERY]
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(f"SELECT id FROM anyjob_jobs WHERE id IN ({marks})", chunk).fetchall()  # noqa: S608 - placeholders
        if rows:
            stored = {row["id"] for row in rows}
            return next(job_id for job_id in chunk if job_id in stored)
    return ids[0]
