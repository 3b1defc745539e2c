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
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio

from anyjob._exceptions import StoreError
from anyjob._records import JobInfo, JobRecord
from anyjob._signal import Signal
from anyjob.stores._base import StoreChange, snapshot
from anyjob.stores._connection import Connection
from anyjob.stores._outage import backoff
from anyjob.stores._rows import ADDED_FIELDS, FIELDS, dumps, from_row

if TYPE_CHECKING:
    from anyjob.stores._sql import SQLStore

__all__: list[str] = []

T = TypeVar("T")

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


#: The changes after a number, each with its job's row when another origin made it (one
#: statement: one snapshot, one round trip); parameters: the reader's origin, the number.
_CHANGES_SINCE: Final = (
    "SELECT c.seq AS change_seq, c.job_id AS change_job, c.origin AS change_origin,"
    " c.final AS change_final, j.* FROM anyjob_changes c"
    " LEFT JOIN anyjob_jobs j ON j.id = c.job_id AND c.origin <> ?"
    " WHERE c.seq > ? ORDER BY c.seq"
)


def changes_since(
    conn: Connection, last_seq: int, origin: str
) -> tuple[int, list[StoreChange], list[StoreError]]:
    """The changes other origins logged after *last_seq*.

    Returns the new last number, the changes (the latest state of each job, in the
    order of their latest change) and what could not be decoded.

    The log and the records are read in one statement, from one snapshot, so a job
    found gone had its deletion logged in the entries read (with its final info, unless
    an older anyjob deleted it).
    """
    rows = conn.execute(_CHANGES_SINCE, (origin, last_seq)).fetchall()
    if not rows:
        return last_seq, [], []
    latest: dict[str, Any] = {}  # each job's latest change by another origin, in that order
    finals: dict[str, str | None] = {}  # each job's latest logged final (any origin's)
    for row in rows:
        job_id = row["change_job"]
        finals[job_id] = row["change_final"]
        if row["change_origin"] != origin:
            latest.pop(job_id, None)
            latest[job_id] = row
    changes: list[StoreChange] = []
    broken: list[StoreError] = []
    for job_id, row in latest.items():
        if row["id"] is not None:
            try:
                record = from_row(row)
                info = info_of(record)
            except StoreError as exc:
                broken.append(exc)
                continue
            changes.append(StoreChange(job_id, info, record.cancel_requested, record.owner))
            continue
        logged = finals[job_id]
        final: JobInfo | None = None
        try:
            final = None if logged is None else _final_info(job_id, logged)
        except StoreError as exc:
            broken.append(exc)  # the deletion is still reported
        changes.append(StoreChange(job_id, None, cancel_requested=False, owner="", final=final))
    return rows[-1]["change_seq"], changes, broken


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

    Writes through the same store object wake the feed at once; writes by other
    processes (or other store objects on the same file) are noticed by the store's
    :mod:`~anyjob.stores._notice` watcher while the feed waits (PostgreSQL
    ``LISTEN``, SQLite ``data_version``), and the log is read every ``poll_interval``
    seconds all the same (the safety net). While the database is away, the feed reads
    again with backoff (:func:`~anyjob.stores._outage.backoff`) from the last change it
    reported: it never raises a :class:`~anyjob.StoreError`.
    """

    __slots__ = ("_closed", "_last_seq", "_poked", "_since", "_store", "_wakeup", "origin")

    def __init__(self, store: SQLStore, origin: str, last_seq: int | None) -> None:
        self._store = store
        self.origin = origin
        # None: found at the first iteration (the store was not open when subscribed), as the
        # change before the first one logged since shortly before subscribing.
        self._last_seq = last_seq
        self._since = time.time() - SUBSCRIBE_SLACK
        self._wakeup = Signal()
        self._poked = False  # since the last read began: read again before waiting
        self._closed = False

    def poke(self) -> None:
        self._poked = True
        self._wakeup.fire()

    def close(self) -> None:
        self._closed = True
        store = self._store
        store._feeds = [feed for feed in store._feeds if feed is not self]
        if not store._feeds:
            store._notices.close()  # nobody waits for notices now (a new feed starts again)
        self._wakeup.fire()

    async def __aiter__(self) -> AsyncIterator[list[StoreChange]]:
        store = self._store
        last_seq: int = (
            await self._read(seq_before, self._since) if self._last_seq is None else self._last_seq
        )
        while not self._closed:
            store._notices.drain()  # what they told (to every feed) is read now, by this one
            self._poked = False
            last_seq, changes, broken = await self._read(changes_since, last_seq, self.origin)
            self._last_seq = last_seq
            store._head = max(store._head or 0, last_seq)
            warn_undecodable(broken)
            if changes:
                # Not read again at once: whatever is logged from now on pokes this feed
                # (a write here, a notice) or waits for the next poll.
                yield changes
            if self._poked or self._closed:
                continue
            with anyio.move_on_after(store.poll_interval):
                await self._quiet()

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(connection, *args)`` through the store; while the database is away, with backoff."""
        run = self._store._run
        try:
            return await run("read the change log", fn, *args, wrote=False)
        except StoreError:
            return await backoff()(run, "read the change log", fn, *args, wrote=False)

    async def _quiet(self) -> None:
        """Until poked: by a write through this store, or by the store's watcher of other processes."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._store._notices.watch)
            await self._wakeup.wait()
            tg.cancel_scope.cancel()
