"""The cheapest full checkpoint of the running backend, chosen once by whoever needs many."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import anyio.lowlevel

from anyjob._backend import current_async_library

__all__ = ["Checkpoint", "checkpoint_function"]

#: Awaiting what it returns is a checkpoint: a schedule point that raises if cancelled.
Checkpoint = Callable[[], Awaitable[None]]


def _asyncio_checkpoint() -> Awaitable[None]:
    return asyncio.sleep(0)  # what anyio's checkpoint awaits on asyncio, without its dispatch


def checkpoint_function() -> Checkpoint:
    """A function whose awaitable is ``anyio.lowlevel.checkpoint()`` for the running backend.

    ``anyio.lowlevel.checkpoint()`` looks the backend up on every call (about 3 us on
    asyncio, a third of the checkpoint; ``benchmarks/bench_manager.py``); a manager knows
    its backend once it is entered, so it asks once. The backend's own checkpoint is
    what anyio calls: ``asyncio.sleep(0)`` on asyncio, ``trio.lowlevel.checkpoint`` on trio.
    """
    library = current_async_library()
    if library == "asyncio":
        return _asyncio_checkpoint
    if library == "trio":
        import trio  # noqa: PLC0415 - only where trio runs

        return trio.lowlevel.checkpoint
    return anyio.lowlevel.checkpoint  # pragma: no cover - another anyio backend
