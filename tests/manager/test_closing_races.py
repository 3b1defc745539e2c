"""Calls that were on their way to the store when the manager closed leave nothing behind."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from anyjob import Context, JobManager, ManagerClosedError, State
from conftest import DelegatingStore

pytestmark = pytest.mark.anyio


async def ok(ctx: Context) -> str:
    return "ok"


class SlowInserts(DelegatingStore):
    """Inserts wait for ``release`` once ``hold`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = False
        self.inserting = anyio.Event()
        self.release = anyio.Event()

    async def insert(self, record: Any) -> None:
        if self.hold:
            self.inserting.set()
            with anyio.CancelScope(shield=True):
                await self.release.wait()
        await super().insert(record)


async def test_a_submit_the_store_takes_after_closing_is_recorded_canceled_and_refused() -> None:
    store = SlowInserts()
    outcome: list[BaseException] = []

    async def submit_late(jobs: JobManager) -> None:
        try:
            await jobs.submit(ok, id="late")
        except ManagerClosedError as exc:
            outcome.append(exc)

    async with anyio.create_task_group() as tg:
        async with JobManager(store) as jobs:
            store.hold = True
            tg.start_soon(submit_late, jobs)
            await store.inserting.wait()
        store.release.set()  # the manager is closed now; the store takes the record
    assert len(outcome) == 1
    info = await store.get("late")
    assert info is not None
    assert info.state is State.CANCELED  # not a CREATED record nobody will ever run
    assert jobs._statistics().live == 0


_SCRIPT = """
import sys, anyio
from anyjob import JobManager
from anyjob.stores import SQLiteStore

async def interrupt(ctx):
    raise KeyboardInterrupt

async def main():
    async with JobManager(SQLiteStore(sys.argv[1])) as jobs:
        await jobs.submit(interrupt)
        await anyio.sleep_forever()

try:
    anyio.run(main, backend=sys.argv[2])
except KeyboardInterrupt:
    print("KeyboardInterrupt")
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_script_interrupted_by_a_job_exits_with_keyboard_interrupt(backend: str, tmp_path: Any) -> None:
    """Ctrl-C from a job over a store that uses worker threads: the script sees a
    KeyboardInterrupt and the process exits (no worker thread is left waiting)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path / "jobs.db"), backend],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.strip().splitlines()[-1:] == ["KeyboardInterrupt"], done.stderr
    assert done.returncode == 0
