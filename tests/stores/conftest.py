"""Fixtures of the store tests: one store kind per parameter, a fresh database per test."""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Iterator

import pytest
from tests.stores.support import KINDS, StoreKit, require_postgres

from anyjob.stores import PostgresStore, SQLiteStore, Store
from conftest import POSTGRES_DSN, DelegatingStore, drop_postgres_schemas


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: needs the PostgreSQL test server (ANYJOB_TEST_POSTGRES)")


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema name, dropped after the test."""
    require_postgres()
    schema = f"anyjob_test_{uuid.uuid4().hex[:16]}"
    yield schema
    drop_postgres_schemas([schema])


@pytest.fixture(params=KINDS)
def kit(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[StoreKit]:
    """Store objects of one kind over one fresh set of records (closed after the test)."""
    kind: str = request.param
    opened: list[Store] = []
    schema = ""
    if kind == "postgres":
        schema = request.getfixturevalue("postgres_schema")

    def make() -> Store:
        store: Store
        if kind == "memory":
            from anyjob.stores import MemoryStore

            store = MemoryStore()
        elif kind == "protocol":
            store = DelegatingStore()
        elif kind == "sqlite":
            store = SQLiteStore(tmp_path / "jobs.db", poll_interval=0.01)
        else:
            store = PostgresStore(POSTGRES_DSN, schema=schema, poll_interval=0.01)
        opened.append(store)
        return store

    yield StoreKit(kind, make)
    for store in opened:
        if isinstance(store, SQLiteStore | PostgresStore):
            store.close()
