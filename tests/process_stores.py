"""The store several real processes share in a test: ``sqlite:PATH`` or ``postgres:SCHEMA``.

``where`` is a fixture (import ``where_fixture`` into a test module to use it); :func:`store_of` opens the
store a spec names, in the test's own process (the workers open theirs from the same spec).
"""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Iterator

import pytest
from tests.conftest import POSTGRES_DSN, drop_postgres_schemas

from anyjob.stores import PostgresStore, SQLiteStore

__all__ = ["store_of", "where_fixture"]


@pytest.fixture(name="where", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def where_fixture(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[str]:
    """The store every process uses: ``sqlite:PATH`` or ``postgres:SCHEMA`` (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:{tmp_path / 'jobs.db'}"
        return
    schema = f"anyjob_test_{uuid.uuid4().hex[:16]}"
    yield f"postgres:{schema}"
    drop_postgres_schemas([schema])


def store_of(where: str) -> SQLiteStore | PostgresStore:
    """The store *where* names, opened in this process."""
    kind, _, place = where.partition(":")
    if kind == "sqlite":
        return SQLiteStore(place, poll_interval=0.02)
    return PostgresStore(POSTGRES_DSN, schema=place)
