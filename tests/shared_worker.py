"""A worker process for tests/test_processes_shared.py: one of several managers sharing one store.

    python tests/shared_worker.py STORE INDEX BACKEND COUNT CONCURRENCY PAUSE RUNS_FILE

STORE is ``sqlite:PATH`` or ``postgres:SCHEMA``; BACKEND ``asyncio`` or ``trio``. It opens a
manager (lease 3 s, shutdown_timeout 1 s, at most CONCURRENCY jobs at once), registers ``work``
(which appends its job's id to RUNS_FILE, sleeps PAUSE seconds and returns ``w<INDEX>``),
submits COUNT jobs, prints ``submitted``, then waits for a line on stdin: ``leave`` leaves the
manager (it runs its backlog for ``shutdown_timeout``, cancels the job running then, and leaves
the rest waiting for the others), ``done`` after the test saw every job end.
"""

from __future__ import annotations

import os
import sys

import anyio
import anyio.to_thread

from anyjob import Context, JobManager
from anyjob.stores import PostgresStore, SQLiteStore

#: Long enough that a live manager on a loaded 2-core machine never looks lost (renewed every ~1 s).
LEASE = 3.0
DSN = os.environ.get("ANYJOB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


async def main(args: list[str]) -> None:
    spec, index, count, concurrency = args[0], int(args[1]), int(args[3]), int(args[4])
    pause, runs = float(args[5]), args[6]
    kind, _, where = spec.partition(":")
    store = SQLiteStore(where, poll_interval=0.02) if kind == "sqlite" else PostgresStore(DSN, schema=where)
    fd = os.open(runs, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    async def work(ctx: Context) -> str:
        os.write(fd, f"{ctx.id}\n".encode())  # one write(2) per line: lines of processes never mix
        await anyio.sleep(pause)
        return f"w{index}"

    try:
        async with JobManager(store, lease=LEASE, max_concurrency=concurrency, shutdown_timeout=1) as jobs:
            jobs.register(work, "work")
            for i in range(count):
                await jobs.submit("work", {"by": index, "n": i})
            print("submitted", flush=True)  # noqa: T201 - the test reads this line
            await anyio.to_thread.run_sync(sys.stdin.readline)
    finally:
        os.close(fd)
        store.close()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:], backend=sys.argv[3])
