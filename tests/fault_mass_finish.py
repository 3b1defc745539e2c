"""A child process for tests/test_faults_mass_finish.py: many jobs end at once, each end printed as reported.

    python tests/fault_mass_finish.py STORE COUNT BACKEND

STORE is ``sqlite:PATH`` or ``postgres:SCHEMA``; BACKEND ``asyncio`` or ``trio``. It submits
COUNT jobs that all wait for one gate, printing ``submitted ID`` as each ``submit`` returns,
then ``running`` once all run, then opens the gate: they all end at once. Each end is printed as
``waited ID STATE`` the moment ``wait`` reports it and ``event ID STATE`` the moment ``events``
does. The test kills this process (``kill -9``) at a random moment of that and then looks for
every printed end in the database.
"""

from __future__ import annotations

import os
import sys

import anyio

from anyjob import Context, JobManager, instrumentation
from anyjob.stores import PostgresStore, SQLiteStore

DSN = os.environ.get("ANYJOB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def say(*words: str) -> None:
    print(*words, flush=True)  # noqa: T201 - the test reads these lines


async def main(spec: str, count: int) -> None:
    instrumentation.set_hooks([])
    kind, _, where = spec.partition(":")
    store = SQLiteStore(where) if kind == "sqlite" else PostgresStore(DSN, schema=where)
    gate = anyio.Event()
    running = 0
    all_running = anyio.Event()

    async def work(ctx: Context) -> int:
        nonlocal running
        running += 1
        if running == count:
            all_running.set()
        await gate.wait()
        return int(ctx.params)

    async def wait(jobs: JobManager, job_id: str) -> None:
        info = await jobs.wait(job_id)
        assert info is not None
        say("waited", job_id, info.state.value)

    async def follow(jobs: JobManager, ready: anyio.Event) -> None:
        events = jobs.events()
        ready.set()
        async for event in events:
            if event.state.is_done:
                say("event", event.job_id, event.state.value)

    async with JobManager(store) as jobs, anyio.create_task_group() as tg:
        jobs.register(work, "work")
        ready = anyio.Event()
        tg.start_soon(follow, jobs, ready)
        await ready.wait()
        for i in range(count):
            ref = await jobs.submit("work", i)
            say("submitted", ref.id)
            tg.start_soon(wait, jobs, ref.id)
        await all_running.wait()
        say("running")
        gate.set()
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], int(sys.argv[2]), backend=sys.argv[3])
