"""The manager's lifecycle phases, and what crosses its edges: filters in, interrupts out."""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable

import anyio

from anyjob._exceptions import StoreError
from anyjob._limits import check_name
from anyjob._manager._sink import Sink
from anyjob._state import State
from anyjob._time import to_seconds
from anyjob.stores._base import Store, StoreFeed

__all__ = [
    "Phase",
    "check_concurrency",
    "check_filter_name",
    "check_states",
    "interrupt_of",
    "open_store",
    "retain",
]


class Phase(enum.Enum):
    """The manager's lifecycle; each value is what a refused call says of it."""

    NEW = "the JobManager is not started (use 'async with JobManager() as jobs')"
    OPEN = "open"
    CLOSING = "the JobManager is closing"
    CLOSED = "the JobManager is closed"


def check_states(state: State | Iterable[State] | None) -> frozenset[State] | None:
    if state is None:
        return None
    if isinstance(state, State):
        return frozenset((state,))
    if isinstance(state, str) or not isinstance(state, Iterable):
        msg = f"state must be a State or several, not {state!r}"
        raise TypeError(msg)
    states = frozenset(state)
    for item in states:
        if not isinstance(item, State):
            msg = f"state must be a State or several, got {item!r}"
            raise TypeError(msg)
    return states


def check_filter_name(name: str | None) -> str | None:
    return None if name is None else check_name(name, "name")


def interrupt_of(group: BaseExceptionGroup[BaseException], backend: str) -> BaseException | None:
    """The KeyboardInterrupt or SystemExit a worker re-raised, if that is all *group* holds.

    On trio the task group gathers it into *group*: the script should see it as it is.
    On asyncio it left the event loop the moment the worker raised it, and ``asyncio.run``
    raises it to the script itself once it has cleaned up; raising it again from the
    manager's exit, inside that clean-up, would cut the clean-up short (anyio's worker
    threads would never be told to stop and the process would not exit): ``None`` there.
    """
    if backend == "asyncio":
        return None
    cancelled = anyio.get_cancelled_exc_class()
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop()
        if isinstance(exc, BaseExceptionGroup):
            pending.extend(exc.exceptions)  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
        elif not isinstance(exc, cancelled):
            leaves.append(exc)
    if leaves and all(isinstance(exc, KeyboardInterrupt | SystemExit) for exc in leaves):
        return leaves[-1]
    return None


async def retain(sink: Sink, store: Store, retention: float) -> None:
    """Forever: delete the jobs that ended more than *retention* seconds ago."""
    interval = min(max(retention / 2, 0.01), 1.0)
    while True:
        await anyio.sleep(interval)
        try:
            await sink.settle()
            await store.delete_finished(time.time() - retention)
        except StoreError:
            continue  # the database is away: the next round deletes them


def check_lease(value: object) -> float:
    """``lease``: positive, finite seconds (or a ``timedelta``)."""
    seconds = to_seconds(value, "lease")
    if seconds <= 0.0:
        msg = f"lease must be more than 0 seconds, got {seconds!r}"
        raise ValueError(msg)
    return seconds


def check_concurrency(value: object) -> None:
    """``max_concurrency``: None, or an int >= 1."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"max_concurrency must be an int or None, not {type(value).__name__}"
        raise TypeError(msg)
    if value < 1:
        msg = f"max_concurrency must be >= 1 (or None for no limit), got {value}"
        raise ValueError(msg)


async def open_store(store: Store, origin: str) -> StoreFeed:
    """Open *store* and subscribe *origin* to it; any failure is a :class:`StoreError` (cause chained)."""
    try:
        await store.open()
        return store.subscribe(origin)
    except (StoreError, anyio.get_cancelled_exc_class()):
        raise
    except Exception as exc:
        msg = f"could not open the store {store!r}: {exc}"
        raise StoreError(msg) from exc
