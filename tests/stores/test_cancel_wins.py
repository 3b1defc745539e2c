"""A cancel from another process wins, even when the job ends before its owner hears of it."""

from __future__ import annotations

import pathlib

import anyio
import pytest

from anyjob import Context, JobManager, State
from anyjob.stores import SQLiteStore

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]

ROUNDS = 30


async def test_a_job_ending_right_after_another_managers_cancel_ends_canceled(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "jobs.db"
    started: dict[int, anyio.Event] = {}
    release: dict[int, anyio.Event] = {}

    async def job(ctx: Context) -> str:
        started[ctx.params].set()
        await release[ctx.params].wait()
        return "finished anyway"

    # Two store objects on one file: what two processes have. The owner polls the file
    # rarely, so the job ends before it reads the cancel request from the change log.
    async with (
        JobManager(SQLiteStore(path, poll_interval=60)) as owner,
        JobManager(SQLiteStore(path, poll_interval=0.01)) as other,
    ):
        for i in range(ROUNDS):
            started[i] = anyio.Event()
            release[i] = anyio.Event()
            ref = await owner.submit(job, params=i)
            with anyio.fail_after(10):
                await started[i].wait()
            assert await other.cancel(ref.id) is True
            release[i].set()  # the job returns at once
            with anyio.fail_after(10):
                info = await other.wait(ref.id)
            assert info is not None
            assert (i, info.state) == (i, State.CANCELED)
    final = SQLiteStore(path)
    stats = await final.statistics()
    final.close()
    assert stats.by_state[State.CANCELED] == ROUNDS
    assert stats.by_state[State.SUCCEEDED] == 0
