"""A frozen snapshot of a manager's internals, for tests and debugging (not public API)."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import attrs

if TYPE_CHECKING:
    import enum

    from anyjob._manager._pool import WorkerPool
    from anyjob._manager._publisher import Publisher
    from anyjob._manager._queues import DelayedQueue
    from anyjob._manager._recorder import Recorder
    from anyjob._manager._specs import SpecRegistry
    from anyjob._manager._waiters import Waiters

__all__ = ["ManagerStatistics", "snapshot"]


@final
@attrs.frozen
class ManagerStatistics:
    """A frozen snapshot of a manager's internals, for tests and debugging (not public API).

    Attributes:
        phase: ``"new"``, ``"open"``, ``"closing"`` or ``"closed"``.
        live: Jobs this manager owns that are not done (waiting, scheduled or executing).
        ready: Jobs waiting for a worker.
        delayed: Jobs scheduled for later.
        executing: Jobs a worker is running (or claiming) now.
        workers: Worker tasks alive now.
        idle_workers: Workers waiting for work.
        worker_starts: Worker tasks started since the manager was built.
        waiters: Job ids some ``wait`` call waits on.
        parked: Of those, the ids some call is parked on: it read the job and waits for its end.
        streams: Open ``events()`` subscriptions.
        specs: Function specs remembered for submissions by function.
        local_specs: Specs of unregistered functions remembered for ``retry``.
        pending_writes: Jobs whose changes are not yet written to the store.
    """

    phase: str
    live: int
    ready: int
    delayed: int
    executing: int
    workers: int
    idle_workers: int
    worker_starts: int
    waiters: int
    parked: int
    streams: int
    specs: int
    local_specs: int
    pending_writes: int


def snapshot(
    *,
    phase: enum.Enum,
    recorder: Recorder,
    pool: WorkerPool,
    delayed: DelayedQueue,
    waiters: Waiters,
    publisher: Publisher,
    registry: SpecRegistry,
) -> ManagerStatistics:
    """What the parts of one manager hold right now."""
    specs, local_specs = registry.remembered
    return ManagerStatistics(
        phase=phase.name.lower(),
        live=len(recorder.entries),
        ready=len(pool.ready),
        delayed=len(delayed),
        executing=pool.executing,
        workers=pool.workers,
        idle_workers=pool.idle,
        worker_starts=pool.starts,
        waiters=len(waiters),
        parked=waiters.parked,
        streams=len(publisher.streams),
        specs=specs,
        local_specs=local_specs,
        pending_writes=pool.pending_writes,
    )
