"""The change-notice watchers at their edges: a store closed under a waiting feed, a slow connect."""

from __future__ import annotations

import pathlib
import threading
import time
from typing import Any

import anyio
import pytest

from anyjob import Context, JobManager, State
from anyjob.stores import SQLiteStore
from anyjob.stores._notice import Listener

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]


async def echo(ctx: Context) -> int:
    return 1


async def test_closing_an_sqlite_store_under_a_waiting_feed_keeps_the_manager(tmp_path: pathlib.Path) -> None:
    """``store.close()`` closes the watch a feed waits on; the store opens again; the manager lives."""
    store = SQLiteStore(tmp_path / "jobs.db")
    try:
        async with JobManager(store, shutdown_timeout=0) as jobs:
            jobs.register(echo, "echo")
            ref = await jobs.submit("echo")
            assert (await jobs.wait(ref.id, timeout=10)) is not None
            await anyio.sleep(0.2)  # the feed waits on the watch's fd now
            store.close()  # "the connections open again on the next call"
            await anyio.sleep(0.2)
            ref = await jobs.submit("echo")
            info = await jobs.wait(ref.id, timeout=10)
            assert info is not None
            assert info.state is State.SUCCEEDED
    finally:
        store.close()


class _Store:
    def _poke(self, origin: str) -> None:
        return None


async def test_a_cancelled_watch_does_not_wait_for_a_slow_connect() -> None:
    """A watch cancelled while its listening connection is being made returns at once."""
    release = threading.Event()
    made: list[Any] = []

    class Connection:
        closed = False

        def close(self) -> None:
            self.closed = True

    def slow_connect() -> Connection:
        release.wait(30)  # libpq reaching for an unreachable server
        made.append(Connection())
        return made[-1]

    listener = Listener(_Store(), slow_connect)  # type: ignore[arg-type]
    began = time.monotonic()
    with anyio.move_on_after(0.1):
        await listener.watch()
    assert time.monotonic() - began < 5
    listener.close()
    release.set()  # the abandoned connect finishes after close(): its connection is closed, not kept
    with anyio.fail_after(10):
        while not made:  # noqa: ASYNC110 - a worker thread's result
            await anyio.sleep(0.01)
    assert made[0].closed
    assert listener._conn is None
