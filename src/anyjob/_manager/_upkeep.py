"""Upkeep: the one background sweeper of a manager over a shared store.

Every third of the lease it renews this manager's lease (durable stores) and resolves the
jobs of managers whose lease ran out (``Store.recover_lost``); each round it ends silent
external jobs (``Store.expire_stale``) and, when workers are free, takes waiting jobs of the
functions this manager registered (``Store.claim_waiting``). What changed is told to this manager's
events, waiters and hooks here; the other managers learn it from their feeds.
"""

from __future__ import annotations

from typing import Final, final

import anyio
import attrs

from anyjob._exceptions import JobLostError, StoreError
from anyjob._manager._entry import Entry
from anyjob._manager._external import Reports
from anyjob._manager._pool import WorkerPool
from anyjob._manager._recorder import Recorder
from anyjob._manager._specs import SpecRegistry
from anyjob._records import now_timestamp
from anyjob._state import State
from anyjob.stores._base import Store
from anyjob.stores._outage import backoff

__all__ = ["CLAIM_BATCH", "Upkeep"]

#: Waiting jobs taken from the store at once when this manager has no concurrency limit.
CLAIM_BATCH: Final = 16
_FAILED: Final = State.FAILED


@final
class Upkeep:
    """Leases, lost managers' jobs, silent external jobs and shared waiting jobs, in one loop."""

    __slots__ = (
        "_durable",
        "_lease",
        "_origin",
        "_pool",
        "_recorder",
        "_recover_from",
        "_registry",
        "_renew_at",
        "_reports",
        "_store",
        "claiming",
    )

    def __init__(
        self,
        origin: str,
        store: Store,
        *,
        durable: bool,
        lease: float,
        reports: Reports,
        recorder: Recorder,
        registry: SpecRegistry,
        pool: WorkerPool,
    ) -> None:
        self._origin = origin
        self._store = store
        self._durable = durable  # leases and shared work: only over a store other processes reach
        self._lease = lease
        self._reports = reports
        self._recorder = recorder
        self._registry = registry
        self._pool = pool
        #: Whether to take waiting jobs from the store (not once the manager is closing).
        self.claiming = True
        #: On the loop clock, when lost managers' jobs may be resolved: at once, but a lease
        #: after the database came back from an outage (None: not back yet).
        self._recover_from: float | None = 0.0
        #: On the loop clock, when the lease is renewed next (rounds may come more often,
        #: for silent external jobs and shared waiting jobs).
        self._renew_at = 0.0

    @property
    def interval(self) -> float:
        """Seconds between two rounds: a third of the lease, or less for short ``stale_after``."""
        interval = self._reports.sweep_interval
        return min(interval, self._lease / 3) if self._durable else interval

    async def open(self) -> None:
        """Take this manager's lease before its first job (durable stores)."""
        if self._durable:
            await self._renew()

    async def close(self) -> None:
        """Give the lease back (a clean close: the jobs left waiting are anyone's at once)."""
        if self._durable:
            try:
                await self._store.release_lease(self._origin)
            except StoreError:
                return  # the lease runs out by itself

    async def run(self) -> None:
        """Rounds until cancelled (a background task of the manager).

        A round the database fails: the lease is renewed again with backoff until it
        answers (this manager's own lease first, so the others do not take it for lost).
        """
        shortened = self._reports.shortened  # a short stale_after: look again at once
        while True:
            with anyio.move_on_after(self.interval):
                await shortened.wait()
            try:
                await self.round()
            except StoreError:
                if self._durable:
                    self._recover_from = None
                    await backoff()(self._renew)

    async def _renew(self) -> None:
        await self._store.renew_lease(self._origin, self._lease)
        self._renew_at = anyio.current_time() + self._lease / 3
        if self._recover_from is None:
            # Back after an outage: every other manager was cut off too, maybe past its lease;
            # give them a whole lease to renew theirs before resolving anyone's jobs.
            self._recover_from = anyio.current_time() + self._lease

    async def round(self) -> None:
        """One round of upkeep."""
        store = self._store
        origin = self._origin
        if self._durable and anyio.current_time() >= self._renew_at:  # every lease / 3
            await self._renew()
            if anyio.current_time() >= (self._recover_from or 0.0):
                lost = await store.recover_lost(origin=origin, resumable=self._registry.resumable)
                await self._tell(lost)
        await self._tell(await store.expire_stale(now_timestamp(), origin=origin))
        if self._durable:
            await self._claim()

    async def _tell(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            info = await self._store.get(job_id)
            if info is not None:
                lost = (
                    JobLostError(info.error, job_id=job_id) if info.state is _FAILED and info.error else None
                )
                self._reports.tell(info, lost)

    async def _claim(self) -> None:
        """Take waiting jobs of the functions registered here, as many as workers are free."""
        names = self._registry.names
        pool = self._pool
        if not names or not self.claiming or pool.is_closed:
            return
        limit = pool.limit
        free = CLAIM_BATCH if limit is None else limit - pool.executing - pool.ready.size
        if free <= 0 or pool.ready.size:
            return
        # A live manager's waiting job is taken once it has been due for a lease: its backlog.
        records = await self._store.claim_waiting(names, origin=self._origin, limit=free, grace=self._lease)
        recorder = self._recorder
        for stored in records:
            if stored.id in recorder.entries:
                continue  # ours already (a retry of it here raced the claim)
            record = attrs.evolve(stored)  # the manager's own copy (the sink writes it back)
            spec = self._registry.for_retry(record)
            entry = Entry(recorder, record, spec)
            recorder.add(entry)
            pool.push(entry)
