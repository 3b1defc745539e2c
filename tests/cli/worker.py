"""Another process using an SQLite store: ``python tests/cli/worker.py DB``.

It registers ``hold`` and ``quick``, runs at most one job at a time and submits one
``hold`` (which waits until this process reads a line on stdin) and two ``quick``
jobs, which wait behind it. It prints ``ready <ids>`` once the hold job runs, then,
after a line on stdin, waits for all three and prints ``final <id>=<state> ...``.
"""

from __future__ import annotations

import sys

import anyio
import anyio.to_thread

import anyjob
from anyjob.stores import SQLiteStore

release = anyio.Event()


async def hold(ctx: anyjob.Context) -> str:
    ctx.set_progress(0.5, "holding")
    await release.wait()
    return "held"


async def quick(ctx: anyjob.Context) -> str:
    ctx.set_progress(1.0, "quick")
    return "quick"


async def main(path: str) -> None:
    anyjob.instrumentation.set_hooks([])
    async with anyjob.JobManager(SQLiteStore(path, poll_interval=0.05), max_concurrency=1) as jobs:
        jobs.register(hold)
        jobs.register(quick)
        events = jobs.events()  # before submitting: its start cannot be missed
        first = await jobs.submit("hold", name="hold")
        rest = [await jobs.submit("quick", name=f"quick-{i}") for i in range(2)]
        async for event in events:
            if event.job_id == first.id and event.progress == 0.5:
                break
        events.close()
        await jobs.list()  # settles this manager's writes: the store holds what it did so far
        ids = [first.id, *(ref.id for ref in rest)]
        print("ready", *ids, flush=True)  # noqa: T201 - what the test reads
        await anyio.to_thread.run_sync(sys.stdin.readline)
        release.set()
        finals = [info async for info in jobs.as_completed(ids, timeout=60)]
        print("final", *(f"{info.id}={info.state.value}" for info in finals), flush=True)  # noqa: T201


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])
