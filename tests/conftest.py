"""Fixtures and helpers shared by the whole suite.

* ``anyio_backend``: every async test runs on asyncio and trio (``"mock"``: trio with a MockClock).
* ``store_kind`` / ``make_store``: a test asks for its store; it runs over a MemoryStore, a store
  reached only through the async protocol (:class:`DelegatingStore`), an SQLiteStore and a
  PostgresStore (marker ``postgres``).
* The ``postgres`` marker: such a test skips, with the reason, when the server is down, and fails
  instead when the environment says ``CI=true`` (CI must not pass by skipping).
"""

from __future__ import annotations

import itertools
import os
import pathlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import anyio.lowlevel
import pytest

from anyjob import instrumentation
from anyjob._executor import TestingMode, set_testing_mode

pytest_plugins = ["pytester"]  # tests/manager/test_store_fixture.py runs pytest on this conftest

STORE_KINDS = ("memory", "protocol", "sqlite", "postgres")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "postgres: needs the PostgreSQL server at ANYJOB_TEST_POSTGRES"
        " (skipped when it is down; fails instead when CI=true)",
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked ``postgres`` skip when the server is down, or fail when ``CI=true``."""
    if item.get_closest_marker("postgres") is None:
        return
    reason = postgres_unavailable()
    if reason is None:
        return
    if running_in_ci():
        pytest.fail(f"{reason}; CI=true, so PostgreSQL tests must run, not skip", pytrace=False)
    pytest.skip(reason)


def running_in_ci() -> bool:
    """Whether the environment says it is CI (``CI=true``, as GitHub Actions and most CI set it)."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


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

    def __init__(self, inner: Any = None) -> None:
        from anyjob.stores import MemoryStore

        self.inner = MemoryStore() if inner is None else inner
        self.batches = 0

    async def open(self):  # type: ignore[no-untyped-def]
        await anyio.lowlevel.checkpoint()
        await self.inner.open()

    async def insert(self, record, *, origin=None):  # type: ignore[no-untyped-def]
        await anyio.lowlevel.checkpoint()  # a real store suspends: races show up here too
        await self.inner.insert(record, origin=origin)

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

    async def delete(self, job_id, *, origin):  # type: ignore[no-untyped-def]
        await anyio.lowlevel.checkpoint()  # a real store suspends: races show up here too
        return await self.inner.delete(job_id, origin=origin)

    async def delete_finished(self, ended_before):  # type: ignore[no-untyped-def]
        await anyio.lowlevel.checkpoint()  # a real store suspends: races show up here too
        return await self.inner.delete_finished(ended_before)

    async def expire_stale(self, now, *, origin):  # type: ignore[no-untyped-def]
        await anyio.lowlevel.checkpoint()  # a real store suspends: races show up here too
        return await self.inner.expire_stale(now, origin=origin)

    async def renew_lease(self, origin, lease):  # type: ignore[no-untyped-def]
        await anyio.lowlevel.checkpoint()  # a real store suspends: races show up here too
        await self.inner.renew_lease(origin, lease)

    async def release_lease(self, origin):  # type: ignore[no-untyped-def]
        await anyio.lowlevel.checkpoint()  # a real store suspends: races show up here too
        await self.inner.release_lease(origin)

    async def recover_lost(self, *, origin, resumable):  # type: ignore[no-untyped-def]
        await anyio.lowlevel.checkpoint()  # a real store suspends: races show up here too
        return await self.inner.recover_lost(origin=origin, resumable=resumable)

    async def claim_waiting(self, functions, *, origin, limit, grace):  # type: ignore[no-untyped-def]
        await anyio.lowlevel.checkpoint()  # a real store suspends: races show up here too
        import attrs

        from anyjob._records import check_json_safe

        taken = await self.inner.claim_waiting(functions, origin=origin, limit=limit, grace=grace)
        # Copies, as a store out of process hands out (a MemoryStore hands out its own records).
        return [
            attrs.evolve(
                record,
                params=check_json_safe(record.params, "params"),
                result=check_json_safe(record.result, "result"),
            )
            for record in taken
        ]

    def subscribe(self, origin):  # type: ignore[no-untyped-def]
        return self.inner.subscribe(origin)

    def __len__(self) -> int:
        return len(self.inner)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


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


@pytest.fixture(params=["memory", "protocol", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Which kind of store the test runs over (see :func:`make_store`)."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def make_store(store_kind: str, tmp_path: pathlib.Path) -> Iterator[Callable[[], Any]]:
    """A factory of fresh, empty stores of the kind under test (call it once per store wanted).

    * ``memory``: a MemoryStore (the manager's in-process fast path);
    * ``protocol``: a :class:`DelegatingStore`, reached only through the async Store protocol
      (batched, coalesced writes and claims);
    * ``sqlite``: an SQLiteStore in a new file under ``tmp_path``;
    * ``postgres``: a PostgresStore in a new schema, dropped after the test.

    Several managers over one store: call the factory once and hand the store to each.
    SQL stores made here are closed after the test.
    """
    from anyjob.stores import MemoryStore, PostgresStore, SQLiteStore

    opened: list[SQLiteStore | PostgresStore] = []
    schemas: list[str] = []
    files = itertools.count()

    def make() -> Any:
        if store_kind == "memory":
            return MemoryStore()
        if store_kind == "protocol":
            return DelegatingStore()
        store: SQLiteStore | PostgresStore
        if store_kind == "sqlite":
            store = SQLiteStore(tmp_path / f"jobs-{next(files)}.db", poll_interval=0.02)
        elif store_kind == "postgres":
            schemas.append(f"anyjob_test_{uuid.uuid4().hex[:16]}")
            store = PostgresStore(POSTGRES_DSN, schema=schemas[-1], poll_interval=0.02)
        else:  # pragma: no cover - a typo in a parametrization
            msg = f"unknown store kind {store_kind!r}; expected one of {STORE_KINDS}"
            raise ValueError(msg)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
    if schemas:
        drop_postgres_schemas(schemas)


@pytest.fixture(params=["memory", "protocol", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def pairs(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Any]:
    """Two managers' ways to the same records (see :class:`tests.manager.sharing.Pairs`)."""
    from tests.manager.sharing import Pairs

    made = Pairs(request.param, tmp_path)
    yield made
    made.close()


@pytest.fixture(params=["protocol", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def batched_pairs(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Any]:
    """:func:`pairs` over the stores a manager writes in batches (and claims jobs in)."""
    from tests.manager.sharing import Pairs

    made = Pairs(request.param, tmp_path)
    yield made
    made.close()
