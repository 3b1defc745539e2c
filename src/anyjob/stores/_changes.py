"""The SQL stores' change log (``anyjob_changes``): writing its entries, and feeds reading them.

Every write logs one entry per job it changed: the job's id, the writer's origin, the
time, and for a deletion the deleted row as JSON (``final``), so a feed reading the log
after the job is gone still tells how it ended. A feed reads the entries after the last
one it saw and reports the latest state of each job other origins changed.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, Final

import anyio

from anyjob._exceptions import StoreError
from anyjob._records import JobInfo, JobRecord
from anyjob._signal import Signal
from anyjob.stores._base import StoreChange, snapshot
from anyjob.stores._connection import Connection, transaction
from anyjob.stores._rows import ADDED_FIELDS, FIELDS, dumps, from_row

if TYPE_CHECKING:
    from anyjob.stores._sql import SQLStore

__all__: list[str] = []

#: A feed subscribed before the store was opened reports the changes logged from this many
#: seconds before it was subscribed (the log's position could not be read then without I/O).
SUBSCRIBE_SLACK: Final = 2.0


def log(conn: Connection, job_ids: Sequence[str], origin: str, finals: Sequence[str | None] = ()) -> float:
    """Log changes to *job_ids* by *origin* (inside the caller's transaction); returns their time.

    *finals*, for deletions: :func:`final_of` each deleted row, in the order of *job_ids*.
    """
    at = time.time()
    if finals:
        conn.executemany(
            "INSERT INTO anyjob_changes (job_id, origin, at, final) VALUES (?, ?, ?, ?)",
            [(job_id, origin, at, final) for job_id, final in zip(job_ids, finals, strict=True)],
        )
    else:
        conn.executemany(
            "INSERT INTO anyjob_changes (job_id, origin, at) VALUES (?, ?, ?)",
            [(job_id, origin, at) for job_id in job_ids],
        )
    return at


def final_of(row: Any) -> str | None:
    """A deleted job's row as the change log keeps it (``None`` if it cannot be written as JSON)."""
    try:
        return dumps({name: row[name] for name in FIELDS})
    except (ValueError, TypeError):  # a NaN time, say: the deletion is logged all the same
        return None


def _final_info(job_id: str, final: str) -> JobInfo:
    """The info a logged deletion kept.

    Raises:
        StoreError: It cannot be decoded (its ``job_id`` set).
    """
    try:
        row = json.loads(final)
        if not isinstance(row, dict):
            msg = f"a {type(row).__name__}, not an object"  # pyright: ignore[reportUnknownArgumentType]
            raise TypeError(msg)  # noqa: TRY301 - one message for every way it is broken
        for name in ADDED_FIELDS:  # logged by an anyjob before they were added
            row.setdefault(name, None)
        return snapshot(from_row(row))
    except (ValueError, TypeError, RecursionError) as exc:
        msg = f"cannot decode the final info logged for deleted job {job_id!r}: {exc!r}"
        raise StoreError(msg, job_id=job_id) from exc


def seq_before(conn: Connection, since: float) -> int:
    """The number of the change before the first one logged at or after *since*."""
    row = conn.execute(
        "SELECT COALESCE((SELECT MIN(seq) FROM anyjob_changes WHERE at >= ?) - 1,"
        " (SELECT MAX(seq) FROM anyjob_changes), 0) AS seq",
        (since,),
    ).fetchone()
    return int(row["seq"])


def changes_since(
    conn: Connection, last_seq: int, origin: str
) -> tuple[int, list[StoreChange], list[StoreError]]:
    """The changes other origins logged after *last_seq*.

    Returns the new last number, the changes (the latest state of each job, in the
    order of their latest change) and what could not be decoded.

    The log and the records are read from one snapshot, so a job found gone had its
    deletion logged in the entries read (with its final info, unless an older anyjob
    deleted it).
    """
    with transaction(conn, read=True):
        rows = conn.execute(
            "SELECT seq, job_id, origin, final FROM anyjob_changes WHERE seq > ? ORDER BY seq", (last_seq,)
        ).fetchall()
        if not rows:
            return last_seq, [], []
        finals: dict[str, str | None] = {row["job_id"]: row["final"] for row in rows}  # the latest of each
        job_ids = list(dict.fromkeys(row["job_id"] for row in rows if row["origin"] != origin))
        changes: list[StoreChange] = []
        broken: list[StoreError] = []
        for job_id in job_ids:
            try:
                found = conn.execute("SELECT * FROM anyjob_jobs WHERE id = ?", (job_id,)).fetchone()
                if found is not None:
                    record = from_row(found)
                    info = info_of(record)
                    changes.append(StoreChange(job_id, info, record.cancel_requested, record.owner))
                    continue
            except StoreError as exc:
                broken.append(exc)
                continue
            logged = finals[job_id]
            final: JobInfo | None = None
            try:
                final = None if logged is None else _final_info(job_id, logged)
            except StoreError as exc:
                broken.append(exc)  # the deletion is still reported
            changes.append(StoreChange(job_id, None, cancel_requested=False, owner="", final=final))
        return rows[-1]["seq"], changes, broken


def info_of(record: JobRecord) -> JobInfo:
    """:func:`~anyjob.stores._base.snapshot` of a stored record.

    Raises:
        StoreError: A time is NaN (its ``job_id`` set).
    """
    try:
        return snapshot(record)
    except ValueError as exc:  # a NaN time
        msg = f"cannot decode the stored record of job {record.id!r}: {exc}"
        raise StoreError(msg, job_id=record.id) from exc


def warn_undecodable(broken: Sequence[StoreError]) -> None:
    """One :class:`RuntimeWarning` for each record left out."""
    for error in broken:
        warnings.warn(f"{error} (left out)", RuntimeWarning, stacklevel=3)


class Feed:
    """Changes other origins made, read from the database's change log.

    Writes through the same store object wake the feed at once;
    writes by other processes (or other store objects on the same file) are
    found by polling every ``poll_interval`` seconds.
    """

    __slots__ = ("_closed", "_last_seq", "_since", "_store", "_wakeup", "origin")

    def __init__(self, store: SQLStore, origin: str, last_seq: int | None) -> None:
        self._store = store
        self.origin = origin
        # None: found at the first iteration (the store was not open when subscribed), as the
        # change before the first one logged since shortly before subscribing.
        self._last_seq = last_seq
        self._since = time.time() - SUBSCRIBE_SLACK
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
        last_seq: int = (
            await store._run("read the change log", seq_before, self._since)
            if self._last_seq is None
            else self._last_seq
        )
        while not self._closed:
            last_seq, changes, broken = await store._run(
                "read the change log", changes_since, last_seq, self.origin
            )
            self._last_seq = last_seq
            store._head = max(store._head or 0, last_seq)
            warn_undecodable(broken)
            if changes:
                yield changes
                continue
            with anyio.move_on_after(store.poll_interval):
                await self._wakeup.wait()
