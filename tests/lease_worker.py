"""A worker process for tests/test_processes_leases.py: it submits jobs, runs one, then waits to be killed.

    python tests/lease_worker.py STORE RESUMABLE N

STORE is ``sqlite:PATH`` or ``postgres:SCHEMA``. It opens a manager (lease 0.5 s, one job at a
time), registers ``work`` (``resumable`` if RESUMABLE is ``1``), submits N jobs whose first one
blocks forever, prints ``ready <id> <id>...`` once the first is RUNNING in the store, then
sleeps until it is killed (``kill -9``: nothing of it runs again).
"""

from __future__ import annotations

import os
import sys

import anyio

from anyjob import Context, JobManager, State
from anyjob.stores import PostgresStore, SQLiteStore

LEASE = 0.5
DSN = os.environ.get("ANYJOB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


async def work(ctx: Context) -> str:
    if ctx.params == "block":
        await anyio.sleep_forever()
    return "worker"


async def main(spec: str, resumable: bool, count: int) -> None:
    kind, _, where = spec.partition(":")
    store = SQLiteStore(where, poll_interval=0.02) if kind == "sqlite" else PostgresStore(DSN, schema=where)
    async with JobManager(store, lease=LEASE, max_concurrency=1) as jobs:
        jobs.register(work, "work", resumable=resumable)
        refs = [await jobs.submit("work", "block" if i == 0 else i) for i in range(count)]
        with anyio.fail_after(30):
            while await jobs.status(refs[0].id) is not State.RUNNING:  # noqa: ASYNC110 - a test's worker
                await anyio.sleep(0.01)
        await jobs.get(refs[0].id)  # read your writes: the RUNNING state is in the store
        print("ready", *(ref.id for ref in refs), flush=True)  # noqa: T201 - the test reads this line
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]))
