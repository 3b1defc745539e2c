"""Four real processes share one durable store: every job runs exactly once, none is left behind.

Each worker (tests/shared_worker.py) submits 500 jobs of the registered function ``work``; the
workers alternate between asyncio and trio. Worker 0 runs one slow job at a time and is told to
leave once all have submitted: leaving gracefully runs its backlog for ``shutdown_timeout`` (1 s),
cancels the job running then and leaves the rest waiting, and the three others (which registered
the same name) take them up. The test waits, through a manager of its own that registers nothing
(so runs nothing), until all 2,000 jobs ended, then checks each ended SUCCEEDED (but that one),
each ran exactly once in all the processes together, and worker 0's leftovers ran elsewhere.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator

import anyio
import pytest
from tests.process_stores import store_of, where_fixture  # noqa: F401 - the 'where' fixture

from anyjob import JobInfo, JobManager, JobStatistics, State

pytestmark = pytest.mark.usefixtures("silent")

WORKER = pathlib.Path(__file__).with_name("shared_worker.py")
ROOT = pathlib.Path(__file__).parent.parent
PROCESSES = 4
JOBS = 500
BACKENDS = ("asyncio", "trio")


def _start(where: str, index: int, runs: pathlib.Path) -> subprocess.Popen[str]:
    """Worker *index*: worker 0 slow and alone at a time, the others quick, four at a time."""
    concurrency, pause = (1, 0.05) if index == 0 else (4, 0.0)
    args = [where, str(index), BACKENDS[index % 2], str(JOBS), str(concurrency), str(pause), str(runs)]
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _tell(worker: subprocess.Popen[str], line: str) -> None:
    assert worker.stdin is not None
    worker.stdin.write(line + "\n")
    worker.stdin.flush()


def _submitted(worker: subprocess.Popen[str]) -> None:
    assert worker.stdout is not None
    line = worker.stdout.readline()
    assert line == "submitted\n", f"worker said {line!r}"


@pytest.mark.timeout(300)  # 2,000 jobs in five processes on two cores
def test_four_processes_run_every_job_exactly_once(where: str, tmp_path: pathlib.Path) -> None:
    runs = [tmp_path / f"runs-{i}.txt" for i in range(PROCESSES)]
    # Worker 0 is slow, one job at a time, so most of its jobs still wait when it leaves; the
    # workers alternate between asyncio and trio, so both backends share one store.
    workers = [_start(where, i, runs[i]) for i in range(PROCESSES)]
    try:
        for worker in workers:
            _submitted(worker)
        _tell(workers[0], "leave")
        assert workers[0].wait(timeout=60) == 0
        stats, infos = anyio.run(_when_all_ended, where)
        for worker in workers[1:]:
            _tell(worker, "done")
        for worker in workers[1:]:
            assert worker.wait(timeout=60) == 0
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            for pipe in (worker.stdin, worker.stdout):
                if pipe is not None:
                    pipe.close()
    assert stats.total == PROCESSES * JOBS
    # Only the job worker 0 was running when its shutdown_timeout passed may have been canceled.
    unfinished = [(i.params, i.state, i.error) for i in infos if i.state is not State.SUCCEEDED]
    assert len(unfinished) <= 1, unfinished
    odd = [
        (params, state, error)
        for params, state, error in unfinished
        if params["by"] or state is not State.CANCELED
    ]
    assert not odd, odd
    ran = Counter(line for path in runs for line in path.read_text().split())
    assert set(ran) == {info.id for info in infos}
    twice = [job_id for job_id, times in ran.items() if times != 1]
    assert not twice, f"{len(twice)} jobs ran more than once"
    of_worker_0 = [info for info in infos if info.params["by"] == 0]
    elsewhere = [info for info in of_worker_0 if info.state is State.SUCCEEDED and info.result != "w0"]
    assert elsewhere, "worker 0 left waiting jobs, and the others ran them"
    assert all(info.result in {"w1", "w2", "w3"} for info in elsewhere)


async def _all(jobs: JobManager) -> AsyncIterator[JobInfo]:
    offset = 0
    while True:
        page = await jobs.list(limit=1000, offset=offset)
        for info in page:
            yield info
        if len(page) < 1000:
            return
        offset += len(page)


async def _when_all_ended(where: str) -> tuple[JobStatistics, list[JobInfo]]:
    """Through a manager that registers nothing (so runs nothing): wait until no job is active."""
    store = store_of(where)
    try:
        async with JobManager(store) as jobs:
            with anyio.fail_after(120):
                while (stats := await jobs.stats()).active:  # noqa: ASYNC110 - other processes' jobs
                    await anyio.sleep(0.1)
            return stats, [info async for info in _all(jobs)]
    finally:
        store.close()
