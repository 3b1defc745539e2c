"""MemoryStore's change feeds, and the snapshots it hands out (copies of params and results)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Final, final

import attrs

from anyjob._records import JobInfo, JobRecord, check_json_safe
from anyjob._signal import Signal
from anyjob.stores._base import StoreChange, snapshot

if TYPE_CHECKING:
    from anyjob.stores._memory import MemoryStore

__all__: list[str] = []

_CONTAINERS: Final = (list, dict)


def copied_snapshot(record: JobRecord) -> JobInfo:
    """:func:`~anyjob.stores._base.snapshot` of *record*, its params and result copied."""
    info = snapshot(record)
    params: Any = info.params
    result: Any = info.result
    # Params and results are handed out as copies: a caller mutating them must not
    # change the record. (Records hold plain lists and dicts: copies made by check_json_safe.)
    if type(params) in _CONTAINERS or type(result) in _CONTAINERS:
        return attrs.evolve(
            info, params=check_json_safe(params, "params"), result=check_json_safe(result, "result")
        )
    return info


@final
class MemoryFeed:
    """Changes by other origins, coalesced per job (the latest change wins).

    A changed job is kept as its record (the snapshot is taken when the feed is
    read); a deleted one as its info at the deletion (the record is gone then), or
    ``None`` when that info cannot be read.
    """

    __slots__ = ("_changed", "_closed", "_pending", "_store", "origin")

    def __init__(self, store: MemoryStore, origin: str) -> None:
        self._store = store
        self.origin = origin
        self._pending: dict[str, JobRecord | JobInfo | None] = {}
        self._changed = Signal()
        self._closed = False

    def push(self, job_id: str, change: JobRecord | JobInfo | None) -> None:
        """*change*: the changed record, or the final info of a deleted one (``None``: unknown)."""
        pending = self._pending
        pending.pop(job_id, None)  # keep the order of the latest change
        pending[job_id] = change
        self._changed.fire()

    def close(self) -> None:
        self._closed = True
        self._store._feeds = [feed for feed in self._store._feeds if feed is not self]
        self._changed.fire()

    async def __aiter__(self) -> AsyncIterator[list[StoreChange]]:
        while not self._closed:
            if not self._pending:
                await self._changed.wait()
                continue
            pending, self._pending = self._pending, {}
            yield [_change(job_id, change) for job_id, change in pending.items()]


def _change(job_id: str, change: JobRecord | JobInfo | None) -> StoreChange:
    if change is None or isinstance(change, JobInfo):  # deleted
        return StoreChange(job_id=job_id, info=None, cancel_requested=False, owner="", final=change)
    return StoreChange(
        job_id=job_id,
        info=copied_snapshot(change),
        cancel_requested=change.cancel_requested,
        owner=change.owner,
    )


def final_info(record: JobRecord) -> JobInfo | None:
    """The info a deleted *record* ended with (``None`` for one whose times cannot be read)."""
    try:
        return copied_snapshot(record)
    except ValueError:  # a NaN time: the deletion is still reported
        return None
