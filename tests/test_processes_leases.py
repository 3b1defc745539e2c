"""Real processes over one durable store: a worker killed with ``kill -9`` mid-job is resolved by another.

The worker (tests/lease_worker.py) runs one blocking job and holds more waiting, then is killed.
The manager here (lease 0.5 s) must, within about one lease: end the killed job FAILED with
``JobLostError`` (or run it again, for a function registered ``resumable=True``), and run each
waiting job exactly once.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
from typing import Any

import anyio
import pytest
from tests.process_stores import store_of, where_fixture  # noqa: F401 - the 'where' fixture

from anyjob import Context, JobManager, State

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]

WORKER = pathlib.Path(__file__).with_name("lease_worker.py")
ROOT = pathlib.Path(__file__).parent.parent


def _start_and_kill(where: str, *, resumable: bool, count: int) -> list[str]:
    """Start the worker, wait for its ``ready`` line, kill it with SIGKILL; its job ids."""
    with subprocess.Popen(
        [sys.executable, str(WORKER), where, "1" if resumable else "0", str(count)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ) as worker:
        assert worker.stdout is not None
        line = worker.stdout.readline()
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    words = line.split()
    assert words[:1] == ["ready"], f"the worker said {line!r}"
    return words[1:]


async def _wait_all(jobs: JobManager, ids: list[str]) -> list[Any]:
    infos = []
    for job_id in ids:
        info = await jobs.wait(job_id, timeout=30)
        assert info is not None
        infos.append(info)
    return infos


async def test_a_killed_workers_jobs_are_resolved_by_another_process(where: str) -> None:
    ids = await anyio.to_thread.run_sync(lambda: _start_and_kill(where, resumable=False, count=4))
    ran: list[str] = []

    async def work(ctx: Context) -> str:
        ran.append(ctx.id)
        return "here"

    store = store_of(where)
    try:
        async with JobManager(store, lease=0.5) as jobs:
            jobs.register(work, "work")
            infos = await _wait_all(jobs, ids)
    finally:
        store.close()
    first, *waiting = infos
    assert (first.state, first.error_type) == (State.FAILED, "JobLostError")
    assert [(info.state, info.result) for info in waiting] == [(State.SUCCEEDED, "here")] * 3
    assert sorted(ran) == sorted(ids[1:])  # each waiting job exactly once, the lost one never


async def test_a_killed_workers_resumable_job_runs_again(where: str) -> None:
    ids = await anyio.to_thread.run_sync(lambda: _start_and_kill(where, resumable=True, count=1))

    async def work(ctx: Context) -> str:
        return "again"

    store = store_of(where)
    try:
        async with JobManager(store, lease=0.5) as jobs:
            jobs.register(work, "work", resumable=True)
            (info,) = await _wait_all(jobs, ids)
    finally:
        store.close()
    assert (info.state, info.result, info.attempts) == (State.SUCCEEDED, "again", 2)
