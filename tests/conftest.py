from __future__ import annotations

import os
from collections.abc import Iterator

import anyio.lowlevel
import pytest

from anyjob import instrumentation
from anyjob._executor import TestingMode, set_testing_mode


@pytest.fixture(
    params=[pytest.param(("asyncio", {}), id="asyncio"), pytest.param(("trio", {}), id="trio")],
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """asyncio and trio; ``"mock"`` (by indirect parametrization) is trio with a MockClock."""
    if request.param == "mock":
        from trio.testing import MockClock

        return ("trio", {"clock": MockClock(autojump_threshold=0)})
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def _isolate_process_settings() -> Iterator[None]:
    """Every test starts with the default hooks and testing mode off, and leaves them so."""
    instrumentation.reset_hooks()
    set_testing_mode(TestingMode())
    yield
    instrumentation.reset_hooks()
    set_testing_mode(TestingMode())


@pytest.fixture
def silent() -> None:
    """Silence anyjob's logging for tests that run many jobs (restored by the autouse fixture)."""
    instrumentation.set_hooks([])


class DelegatingStore:
    """A Store that is not a MemoryStore: managers talk to it only through the async protocol.

    It keeps its records in a MemoryStore it never shares, so the manager's batched,
    coalesced write path (not the in-process fast path) is what the tests exercise.
    """

    def __init__(self) -> None:
        from anyjob.stores import MemoryStore

        self.inner = MemoryStore()
        self.batches = 0

    async def open(self):  # type: ignore[no-untyped-def]
        await anyio.lowlevel.checkpoint()
        await self.inner.open()

    async def insert(self, record):  # type: ignore[no-untyped-def]
        await anyio.lowlevel.checkpoint()  # a real store suspends: races show up here too
        await self.inner.insert(record)

    async def apply(self, updates, *, origin):  # type: ignore[no-untyped-def]
        await anyio.lowlevel.checkpoint()  # a real store suspends: races show up here too
        self.batches += 1
        return await self.inner.apply(updates, origin=origin)

    async def get(self, job_id):  # type: ignore[no-untyped-def]
        await anyio.lowlevel.checkpoint()  # a real store suspends: races show up here too
        return await self.inner.get(job_id)

    async def get_record(self, job_id):  # type: ignore[no-untyped-def]
        await anyio.lowlevel.checkpoint()  # a real store suspends: races show up here too
        return await self.inner.get_record(job_id)

    async def query(self, query):  # type: ignore[no-untyped-def]
        await anyio.lowlevel.checkpoint()  # a real store suspends: races show up here too
        return await self.inner.query(query)

    async def statistics(self, *, name=None, labels=None):  # type: ignore[no-untyped-def]
        await anyio.lowlevel.checkpoint()  # a real store suspends: races show up here too
        return await self.inner.statistics(name=name, labels=labels)

    async def request_cancel(self, job_id, *, origin):  # type: ignore[no-untyped-def]
        await anyio.lowlevel.checkpoint()  # a real store suspends: races show up here too
        return await self.inner.request_cancel(job_id, origin=origin)

    async def delete_finished(self, ended_before):  # type: ignore[no-untyped-def]
        await anyio.lowlevel.checkpoint()  # a real store suspends: races show up here too
        return await self.inner.delete_finished(ended_before)

    def subscribe(self, origin):  # type: ignore[no-untyped-def]
        return self.inner.subscribe(origin)

    def __len__(self) -> int:
        return len(self.inner)


POSTGRES_DSN = os.environ.get("ANYJOB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used for tests here, or None when it can (asked once)."""
    global _postgres_checked
    if _postgres_checked is None:
        try:
            import psycopg

            psycopg.connect(POSTGRES_DSN, connect_timeout=3).close()
        except Exception as exc:
            _postgres_checked = f"no PostgreSQL at {POSTGRES_DSN} ({exc})"
        else:
            _postgres_checked = ""
    return _postgres_checked or None


_postgres_checked: str | None = None


def drop_postgres_schemas(schemas: list[str]) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
