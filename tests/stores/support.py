"""Helpers for the store tests (import as ``tests.stores.support``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncGenerator, Callable
from typing import Any, cast

import anyio
import attrs
import pytest

from anyjob import State
from anyjob.stores import JobRecord, Store
from anyjob.stores._base import StoreChange, StoreFeed

#: Every store kind the contract covers; the durable ones keep records in a database.
KINDS = ["memory", "protocol", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
DURABLE = frozenset({"sqlite", "postgres"})


def require_postgres() -> None:
    """Skip (or, with ``CI=true``, fail) when the PostgreSQL test server is down."""
    from conftest import postgres_unavailable

    reason = postgres_unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@attrs.define
class StoreKit:
    """Store objects over one set of records: what separate processes would each hold.

    ``new()`` gives another store object on the same database for a durable store,
    and the one shared store object otherwise (memory, protocol).
    """

    kind: str
    make: Callable[[], Store]
    first: Store | None = None

    @property
    def durable(self) -> bool:
        return self.kind in DURABLE

    def store(self) -> Store:
        if self.first is None:
            self.first = self.make()
        return self.first

    def new(self) -> Store:
        return self.make() if self.durable else self.store()


def record(job_id: str, **fields: Any) -> JobRecord:
    """A record with plain defaults (CREATED, owner "manager-a")."""
    values: dict[str, Any] = {
        "id": job_id,
        "name": "job",
        "state": State.CREATED,
        "labels": {},
        "params": None,
        "priority": 0,
        "created": 1_700_000_000.0,
        "scheduled": 1_700_000_000.0,
        "owner": "manager-a",
        "function": "fn",
    }
    values.update(fields)
    return JobRecord(**values)


async def changes_until(feed: StoreFeed, done: Callable[[list[StoreChange]], bool]) -> list[StoreChange]:
    """Changes from *feed* until ``done(changes_so_far)`` (within 5 s)."""
    seen: list[StoreChange] = []
    async with contextlib.aclosing(cast("AsyncGenerator[list[StoreChange], None]", aiter(feed))) as batches:
        with anyio.fail_after(5):
            async for changes in batches:
                seen.extend(changes)
                if done(seen):
                    break
    return seen
