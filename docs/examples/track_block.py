"""Track a block of your own code as a job: ``async with jobs.track(name) as ctx:``.

Run it: ``python docs/examples/track_block.py`` (add ``trio`` to run it on trio)

The block runs where it is written, in the caller's task; the manager records it
like a submitted job, so ``get``, ``list``, ``wait``, ``events``, ``stats`` and
``cancel`` by id see it. Four blocks: one that succeeds, one canceled by id from
another task, one that raises, and one cut short by the caller's own timeout.
"""

from __future__ import annotations

import sys

import anyio

import anyjob


async def nightly_sync(jobs: anyjob.JobManager) -> None:
    """A block that succeeds: progress while it runs, its result at the end."""
    async with jobs.track("nightly-sync", {"tables": 4}, labels={"kind": "sync"}) as ctx:
        tables = ctx.params["tables"]
        for done in range(1, tables + 1):
            await anyio.sleep(0.01)  # copy one table
            ctx.set_progress(done / tables, f"synced {done} of {tables} tables")
        ctx.set_result({"tables": tables})
    info = await jobs.get(ctx.id)
    assert info is not None
    print(f"1. {info.name}: {info.state.value}, result {info.result}, {info.message!r}")


async def canceled_by_id(jobs: anyjob.JobManager) -> None:
    """``jobs.cancel(id)`` from elsewhere (an admin's request, say) stops the block at its next checkpoint."""
    ids: list[str] = []
    entered = anyio.Event()

    async def reindex() -> None:
        async with jobs.track("reindex") as ctx:
            ids.append(ctx.id)
            entered.set()
            for step in range(1, 101):
                await anyio.sleep(0.01)  # the cancel lands at a checkpoint like this one
                ctx.set_progress(step / 100, f"step {step} of 100")
        # The async with absorbed the cancellation: the code after it runs on.
        print("   after the canceled block, its task goes on")

    async with anyio.create_task_group() as tg:
        tg.start_soon(reindex)
        await entered.wait()
        await anyio.sleep(0.05)
        print(f"2. cancel(id) from another task: {await jobs.cancel(ids[0])}")
    info = await jobs.wait(ids[0], timeout=5)
    assert info is not None
    print(f"   recorded: {info.state.value} at {info.progress:.0%} ({info.message})")


async def import_prices(jobs: anyjob.JobManager) -> None:
    async with jobs.track("import-prices", id="import-prices-2026-12-03"):
        await anyio.sleep(0.01)
        raise ValueError("row 17: price is not a number")


async def failing(jobs: anyjob.JobManager) -> None:
    """An exception is recorded (type, message, traceback), then goes on to the caller."""
    try:
        await import_prices(jobs)
    except ValueError as exc:
        print(f"3. the caller still gets the error: {exc!r}")
    info = await jobs.get("import-prices-2026-12-03")  # an id of our choosing
    assert info is not None
    assert info.traceback is not None
    print(f"   recorded: {info.state.value}, {info.error_type}: {info.error}")
    print(f"   traceback's last line: {info.traceback.rstrip().splitlines()[-1]}")
    try:
        await jobs.retry(info.id)
    except anyjob.JobStateError as exc:
        print(f"   retry refused: {exc}")


async def callers_timeout(jobs: anyjob.JobManager) -> None:
    """The caller's own cancellation (a timeout here): recorded CANCELED, then on to the caller's scope."""
    with anyio.move_on_after(0.05) as scope:
        async with jobs.track("slow-report") as ctx:
            await anyio.sleep(10)
    info = await jobs.get(ctx.id)
    assert info is not None
    print(f"4. timed out: {scope.cancelled_caught}; recorded: {info.state.value}")


async def main() -> None:
    async with anyjob.JobManager() as jobs:
        await nightly_sync(jobs)
        await canceled_by_id(jobs)
        await failing(jobs)
        await callers_timeout(jobs)
        stats = await jobs.stats()
        print("by state:", {state.value: count for state, count in stats.by_state.items() if count})


if __name__ == "__main__":
    anyjob.instrumentation.set_hooks([])  # the example prints what it does itself
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
