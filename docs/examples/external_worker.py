"""The worker of external_web.py: another process that does the exports and reports into their jobs.

Run both: ``python docs/examples/external_web.py`` (it starts this file with ``sys.executable``).

Started as ``python external_worker.py JOBS_DB``, it opens a JobManager over the same
SQLite file as the web process and reads job ids from its standard input, one a line:
the stand-in for a real queue (Redis, SQS, a Celery task's argument...). For each id it
reads the job's params, does the work and reports: ``update`` while it runs (progress,
a sign of life, and the moment a cancel reaches it), then ``complete`` or ``fail``. It
leaves when its input ends, once the jobs it took are done.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator

import anyio

import anyjob
from anyjob.stores import SQLiteStore

#: Seconds between two signs of life in a step with no progress to report: well within
#: the ``stale_after`` the web process gives its jobs.
HEARTBEAT = 0.2


def say(job_id: str, what: str) -> None:
    print(f"  [worker {os.getpid()}] {job_id[-8:]}: {what}", flush=True)


@contextlib.asynccontextmanager
async def heartbeat(jobs: anyjob.JobManager, job_id: str, every: float = HEARTBEAT) -> AsyncIterator[None]:
    """A sign of life every *every* seconds while the block runs (a long step with no progress).

    A cancel of the job reaches the heartbeat's ``update``: its ``JobCanceledError``
    cancels the block and is raised from the ``async with`` as itself (not in an
    exception group), like any error of the block.
    """

    async def beat() -> None:
        while True:
            await anyio.sleep(every)
            await jobs.update(job_id)  # no progress, no message: "still alive"

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(beat)
            yield
            tg.cancel_scope.cancel()
    except ExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


async def export(jobs: anyjob.JobManager, job_id: str) -> None:
    """The work: export the rows, then a long step, then the result."""
    info = await jobs.get(job_id)
    if info is None:
        say(job_id, "no such job (deleted meanwhile)")
        return
    rows = int(info.params["rows"])
    upload = float(info.params.get("upload", 0.5))  # seconds the last step takes
    if rows <= 0:
        msg = f"nothing to export: rows={rows}"
        raise ValueError(msg)
    say(job_id, f"exporting {rows} rows (attempt {max(info.attempts, 1)})")
    for done in range(1, rows + 1):
        await anyio.sleep(0.02)  # export one row
        # Progress for the browser, a sign of life for stale_after, and a cancel check:
        # the first update makes the job RUNNING.
        await jobs.update(job_id, 0.9 * done / rows, f"exported {done} of {rows} rows")
    await jobs.update(job_id, message="compressing and uploading")
    async with heartbeat(jobs, job_id):
        await anyio.sleep(upload)  # one long step: nothing to report but "still alive"
    await jobs.update(job_id, 1.0, "uploaded")  # complete() keeps the last progress and message
    await jobs.complete(job_id, {"rows": rows, "file": f"exports/{job_id}.csv.gz"})
    say(job_id, "done")


async def take(jobs: anyjob.JobManager, job_id: str) -> None:
    """Do one job and report how it ended; nothing it raises stops the other jobs."""
    try:
        await export(jobs, job_id)
    except anyjob.JobCanceledError:
        # Canceled (jobs.cancel(id) in any process): the job is CANCELED already. Stop the
        # work, clean up what it left behind (a partial file, say); report nothing more.
        say(job_id, "canceled: stopped, nothing more to report")
    except anyjob.JobStateError as exc:
        # Not ours to report on any more: canceled before we started, ended by stale_after...
        say(job_id, f"left alone: {exc}")
    except Exception as exc:  # noqa: BLE001 - whatever the work raised, the job records it
        # The work broke: record it (type, message, traceback) for whoever looks at the job.
        with contextlib.suppress(anyjob.JobError):  # canceled or ended meanwhile: nothing to add
            await jobs.fail(job_id, exc)
        say(job_id, f"failed: {exc!r}")


async def main(path: str) -> None:
    async with anyjob.JobManager(SQLiteStore(path)) as jobs, anyio.create_task_group() as tg:
        async for line in anyio.wrap_file(sys.stdin):  # the "queue": one job id a line
            if job_id := line.strip():
                tg.start_soon(take, jobs, job_id)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} JOBS_DB  (job ids on stdin, one a line); see external_web.py")
    anyjob.instrumentation.set_hooks([])  # the example prints what it does itself
    anyio.run(main, sys.argv[1])
