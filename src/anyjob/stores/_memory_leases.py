"""MemoryStore's leases: which managers are alive, their lost jobs, and waiting jobs to share.

Times are this process's clock (``time.time()``, in whole microseconds as records keep
them). Every change to a record's state goes through the :class:`~anyjob.stores._index.Index`
(its counters stay right); an owner alone is not indexed, and is written in place.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection
from typing import Final, final

from anyjob._kinds import EXTERNAL
from anyjob._records import JobRecord
from anyjob._state import State
from anyjob.stores._base import LOST_ERROR_TYPE, claim_order, lease_lost_error
from anyjob.stores._index import Index

__all__: list[str] = []

_CREATED: Final = State.CREATED
_RUNNING: Final = State.RUNNING
_CANCELING: Final = State.CANCELING
_CANCELED: Final = State.CANCELED
_FAILED: Final = State.FAILED
_NO_LEASE: Final = float("-inf")


def _as_set(names: Collection[str]) -> Collection[str]:
    """*names*, as a set unless it is one (``in`` is then cheap)."""
    return names if isinstance(names, set | frozenset) else frozenset(names)


@final
class Leases:
    """Each manager's lease expiry (POSIX seconds), and what follows from it over an index."""

    __slots__ = ("expires",)

    def __init__(self) -> None:
        self.expires: dict[str, float] = {}

    def renew(self, origin: str, lease: float, now: float) -> None:
        self.expires[origin] = now + lease

    def release(self, origin: str) -> None:
        self.expires.pop(origin, None)

    def recover(
        self, index: Index, origin: str, resumable: Collection[str], now: float
    ) -> tuple[list[str], list[JobRecord]]:
        """Resolve the records of lost managers (see ``Store.recover_lost``), their leases deleted.

        Returns the ids whose state changed and every record changed (for the feeds).
        """
        expires = self.expires
        lost = {name for name, until in expires.items() if until < now and name != origin}
        if not lost:
            return [], []
        resumable = _as_set(resumable)
        by_state = index.by_state
        changed: list[str] = []
        touched: list[JobRecord] = []
        # Waiting records first: the ones made waiting below are not met again.
        for record in list(by_state[_CREATED._index].values()):
            if record.owner in lost:
                record.owner = ""  # not indexed: no move
                touched.append(record)
        for state in (_RUNNING, _CANCELING):
            for record in list(by_state[state._index].values()):
                if record.owner not in lost:
                    continue
                old = (record.name, record.started, record.ended)
                if state is _CANCELING or record.cancel_requested:
                    record.state = _CANCELED
                    record.ended = now
                elif record.function in resumable:
                    _make_waiting(record, now)
                else:
                    record.state = _FAILED
                    record.error = lease_lost_error()
                    record.error_type = LOST_ERROR_TYPE
                    record.ended = now
                index.change(record, state, old)
                changed.append(record.id)
                touched.append(record)
        for name in lost:
            del expires[name]
        return changed, touched

    def claim(
        self, index: Index, functions: Collection[str], *, origin: str, limit: int, grace: float, now: float
    ) -> list[JobRecord]:
        """Take up to *limit* waiting records for *origin* (see ``Store.claim_waiting``), in order.

        Looks at every waiting record (the index holds them apart from the rest).
        """
        functions = _as_set(functions)
        expires = self.expires
        shared_from = now - grace  # due at least this long ago: anyone's
        candidates = (
            record
            for record in index.by_state[_CREATED._index].values()
            if record.scheduled <= now
            and record.function in functions
            and record.owner not in (origin, EXTERNAL)
            and (record.scheduled <= shared_from or expires.get(record.owner, _NO_LEASE) < now)
        )
        taken = heapq.nsmallest(limit, candidates, key=claim_order)
        for record in taken:
            record.owner = origin
        return taken


def _make_waiting(record: JobRecord, now: float) -> None:
    """A running *record* back to ``CREATED``, owned by nobody, due *now*, its run forgotten."""
    record.state = _CREATED
    record.owner = ""
    record.scheduled = now
    record.started = None
    record.ended = None
    record.progress = 0.0
    record.message = None
    record.result = None
    record.error = None
    record.error_type = None
    record.traceback = None
    record.updated = None
    record.cancel_requested = False
