"""Opening a SQL store: off the event loop, bounded by a connect timeout, failing as StoreError."""

from __future__ import annotations

import contextlib
import math
import pathlib
import socket
import sqlite3
from collections.abc import Awaitable, Iterator

import anyio
import pytest

from anyjob import StoreError
from anyjob.stores import PostgresStore, SQLiteStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port on loopback that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


class Ticker:
    """A task that counts ticks of the event loop while a call runs."""

    def __init__(self) -> None:
        self.ticks = 0

    async def run(self) -> None:
        while True:
            await anyio.sleep(0.01)
            self.ticks += 1


async def _fails_while_the_loop_ticks(call: Awaitable[object]) -> tuple[StoreError, float, int]:
    ticker = Ticker()
    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker.run)
        error: StoreError | None = None
        try:
            await call
        except StoreError as exc:
            error = exc
        tg.cancel_scope.cancel()
    assert error is not None, "no StoreError"
    return error, anyio.current_time() - start, ticker.ticks


@pytest.mark.parametrize("timeout", [1, 3])
async def test_postgres_open_gives_up_after_the_connect_timeout(silent_server: int, timeout: float) -> None:
    import psycopg

    store = PostgresStore(f"postgresql://postgres@127.0.0.1:{silent_server}/test", connect_timeout=timeout)
    error, elapsed, ticks = await _fails_while_the_loop_ticks(store.open())
    assert isinstance(error.__cause__, psycopg.OperationalError)
    assert "cannot open" in str(error)
    # libpq counts whole seconds, at least 2; generous margins for a loaded machine.
    assert max(timeout, 2) - 0.5 <= elapsed <= max(timeout, 2) + 5
    assert ticks >= elapsed / 0.01 / 10  # the loop kept running the other task


async def test_a_call_before_open_connects_in_a_worker_thread(silent_server: int) -> None:
    store = PostgresStore(f"postgresql://postgres@127.0.0.1:{silent_server}/test", connect_timeout=1)
    error, elapsed, ticks = await _fails_while_the_loop_ticks(store.get("j1"))
    assert error.__cause__ is not None
    assert elapsed <= 7
    assert ticks >= elapsed / 0.01 / 10


async def test_subscribe_does_no_io(silent_server: int) -> None:
    # connect_timeout in the DSN too, so a store that connects here fails fast instead of hanging.
    dsn = f"postgresql://postgres@127.0.0.1:{silent_server}/test?connect_timeout=2"
    store = PostgresStore(dsn, connect_timeout=1)
    start = anyio.current_time()
    feed = store.subscribe("manager-a")
    assert anyio.current_time() - start < 0.5
    # The feed's iterator is where it finds out: the database away, it reads again with
    # backoff (never raising), and the store says it is unavailable.
    with anyio.move_on_after(3):
        async for _ in feed:
            pass
    assert store.availability.away
    feed.close()


async def test_an_unwritable_sqlite_path_fails_open(tmp_path: pathlib.Path) -> None:
    store = SQLiteStore(tmp_path / "no-such-directory" / "jobs.db")
    with pytest.raises(StoreError, match="cannot open") as caught:
        await store.open()
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    with pytest.raises(StoreError):  # and again: nothing half-open is kept
        await store.get("j1")


async def test_sqlite_open_waits_for_a_locked_file_at_most_the_connect_timeout(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "jobs.db"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as holder:
        holder.execute("BEGIN EXCLUSIVE")  # another process writing, for longer than we wait
        store = SQLiteStore(path, connect_timeout=1)
        error, elapsed, ticks = await _fails_while_the_loop_ticks(store.open())
        holder.execute("ROLLBACK")
    assert isinstance(error.__cause__, sqlite3.OperationalError)
    assert 0.5 <= elapsed <= 6
    assert ticks >= elapsed / 0.01 / 10
    await store.open()  # the file is free again
    assert await store.get("j1") is None
    store.close()


@pytest.mark.parametrize("name", ["connect_timeout", "busy_timeout", "poll_interval"])
def test_sqlite_durations_are_checked(tmp_path: pathlib.Path, name: str) -> None:
    path = tmp_path / "jobs.db"
    with pytest.raises(TypeError, match=name):
        SQLiteStore(path, **{name: "1"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=name):
        SQLiteStore(path, **{name: True})
    for bad in [0, -1.0, math.inf, math.nan]:
        with pytest.raises(ValueError, match=name):
            SQLiteStore(path, **{name: bad})
    assert getattr(SQLiteStore(path, **{name: 2}), name) == 2.0


def test_postgres_connect_timeout_is_checked() -> None:
    dsn = "postgresql://postgres@127.0.0.1/test"
    with pytest.raises(TypeError, match="connect_timeout"):
        PostgresStore(dsn, connect_timeout=None)  # type: ignore[arg-type]
    for bad in [0, -1, math.inf, math.nan]:
        with pytest.raises(ValueError, match="connect_timeout"):
            PostgresStore(dsn, connect_timeout=bad)
    assert PostgresStore(dsn).connect_timeout == 10.0
