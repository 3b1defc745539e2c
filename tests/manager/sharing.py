"""Shared-store test helpers: stores that make races between two managers deterministic.

* :class:`LateStore` (and, over one shared MemoryStore, :func:`late_subscriber`): A's change feed
  is read for the first time once ``hear`` is set, and then tells each job as it is at that read
  (the latest change wins, as every feed coalesces). It stands for an SQL store's poll interval,
  or for a follower task the event loop runs after B's worker (a busy B: a worker spinning on
  its checkpoint runs before A's follower).
* :class:`HeldStartStore`: A's first write of a job's start (its RUNNING flush) waits until the
  test releases it: a database answering the claim, then slow on the next transaction.
"""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from tests.conftest import POSTGRES_DSN, DelegatingStore, drop_postgres_schemas

from anyjob import Context, JobManager, State
from anyjob.stores import MemoryStore, PostgresStore, SQLiteStore
from anyjob.stores._base import StoreChange, StoreFeed

#: How long a call that should return at once (its job ended) may take before it counts as hung.
HANG = 3.0


# -- stores that make the races deterministic -------------------------------------------------------


class LateFeed:
    """Reads nothing of *feed* until *hear* is set; then every change since, each job as it is now."""

    def __init__(self, feed: StoreFeed, hear: anyio.Event) -> None:
        self._feed = feed
        self._hear = hear

    def __aiter__(self) -> AsyncIterator[list[StoreChange]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[list[StoreChange]]:
        await self._hear.wait()
        batches = aiter(self._feed)
        try:
            async for changes in batches:
                yield changes
        finally:
            aclose = getattr(batches, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()

    def close(self) -> None:
        self._feed.close()


class LateStore(DelegatingStore):
    """*inner*, shared with other managers; its manager hears of their changes once ``hear`` is set."""

    def __init__(self, inner: Any, hear: anyio.Event) -> None:
        super().__init__(inner)
        self.hear = hear

    def subscribe(self, origin):  # type: ignore[no-untyped-def]
        return LateFeed(self.inner.subscribe(origin), self.hear)


def late_subscriber(store: MemoryStore, hear: anyio.Event, *, after: int = 0) -> None:
    """The manager subscribing to *store* (a shared MemoryStore) after *after* others hears late."""
    subscribe = store.subscribe
    seen = 0

    def late(origin: str) -> Any:
        nonlocal seen
        seen += 1
        if seen <= after:
            return subscribe(origin)
        del store.subscribe  # the next managers subscribe as usual
        return LateFeed(subscribe(origin), hear)

    store.subscribe = late  # type: ignore[method-assign]


class HeldStartStore(DelegatingStore):
    """*inner*; the first write of a job's start (state RUNNING) waits for ``release``."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.held = anyio.Event()
        self.release = anyio.Event()

    async def apply(self, updates, *, origin):  # type: ignore[no-untyped-def]
        if not self.held.is_set() and any(u.fields.get("state") is State.RUNNING for u in updates):
            self.held.set()
            await self.release.wait()
        return await super().apply(updates, origin=origin)


class Pairs:
    """Two ways to the same records: manager A's, then manager B's (made inside the test)."""

    def __init__(self, kind: str, tmp_path: pathlib.Path) -> None:
        self.kind = kind
        self._tmp_path = tmp_path
        self._schema = f"anyjob_test_{uuid.uuid4().hex[:16]}"
        self.opened: list[SQLiteStore | PostgresStore] = []

    def _sql(self) -> SQLiteStore | PostgresStore:
        store: SQLiteStore | PostgresStore
        if self.kind == "sqlite":
            store = SQLiteStore(self._tmp_path / "jobs.db", poll_interval=0.02)
        else:
            store = PostgresStore(POSTGRES_DSN, schema=self._schema, poll_interval=0.02)
        self.opened.append(store)
        return store

    def raw(self) -> tuple[Any, Any]:
        """(A's store, B's store): one MemoryStore twice, a MemoryStore behind the protocol, or SQL."""
        if self.kind == "memory":
            shared = MemoryStore()
            return shared, shared
        if self.kind == "protocol":
            inner = MemoryStore()
            return DelegatingStore(inner), DelegatingStore(inner)
        return self._sql(), self._sql()

    def late(self) -> tuple[Any, Any, anyio.Event]:
        """(A's store, B's store, hear): A hears of B's changes once ``hear`` is set."""
        hear = anyio.Event()
        if self.kind == "memory":
            shared = MemoryStore()
            late_subscriber(shared, hear)
            return shared, shared, hear
        if self.kind == "protocol":
            inner = MemoryStore()
            return LateStore(inner, hear), DelegatingStore(inner), hear
        return LateStore(self._sql(), hear), self._sql(), hear

    def close(self) -> None:
        for store in self.opened:
            store.close()
        if self.kind == "postgres":
            drop_postgres_schemas([self._schema])


class Calls:
    """A job function per manager, registered under one name: which manager ran it, how many at once."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.entered: dict[str, anyio.Event] = {}
        self.release = anyio.Event()
        self.running = 0
        self.max_running = 0

    def fn(self, manager: str) -> Callable[[Context], Any]:
        entered = self.entered[manager] = anyio.Event()

        async def work(ctx: Context) -> str:
            self.calls.append(manager)
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            try:
                entered.set()
                await self.release.wait()
            finally:
                self.running -= 1
            return manager

        return work


async def take_over(a: JobManager, b: JobManager, job_id: str) -> None:
    """B cancels A's waiting job (True), then retries it: the job is B's to run now."""
    assert await b.cancel(job_id) is True
    await b.retry(job_id)


class Stuck(BaseException):
    """Raised by the test's hook to get out of a shutdown that would wait for a year."""
