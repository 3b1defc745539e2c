"""The other process of tests/test_external_processes.py: it reports on an external job by id.

Run as ``python tests/external_reporter.py STORE JOB_ID MODE``; STORE is
``sqlite:PATH`` or ``postgres:SCHEMA`` (the server at ``ANYJOB_TEST_POSTGRES``, as
in tests/conftest.py). It opens its own JobManager over that store (on asyncio) and:

* ``complete``: ``update`` 0.25, prints ``reported``, waits for a line on stdin (the
  test saw that progress), then ``update`` 0.5 and 0.75 and ``complete`` with
  ``{"rows": 3, "by": PID}``; prints ``done``.
* ``until-canceled``: ``update`` in a loop (its progress growing) until it raises
  ``JobCanceledError``, then exits with :data:`EXIT_CANCELED`.
* ``once``: ``update`` 0.3 once, prints ``reported``, exits (the job left RUNNING).
* ``hang``: ``update`` 0.3 once, prints ``reported``, then waits until killed.

Any other end exits with 1 and says why on stderr.
"""

from __future__ import annotations

import os
import sys

import anyio

from anyjob import JobCanceledError, JobManager, instrumentation
from anyjob.stores import PostgresStore, SQLiteStore, Store

#: The exit status after the reporter learned its job was canceled.
EXIT_CANCELED = 42
#: How long ``until-canceled`` reports before it gives up (seconds): far longer than a test waits.
GIVE_UP_AFTER = 120.0
POSTGRES_DSN = os.environ.get("ANYJOB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def open_store(spec: str) -> Store:
    kind, _, where = spec.partition(":")
    if kind == "sqlite":
        return SQLiteStore(where, poll_interval=0.02)
    if kind == "postgres":
        return PostgresStore(POSTGRES_DSN, schema=where, poll_interval=0.02)
    msg = f"unknown store {spec!r}: sqlite:PATH or postgres:SCHEMA"
    raise ValueError(msg)


async def report(store: Store, job_id: str, mode: str) -> int:
    async with JobManager(store) as jobs:
        if mode == "complete":
            await jobs.update(job_id, 0.25, "a quarter")
            say("reported")
            await anyio.to_thread.run_sync(sys.stdin.readline)  # the test saw the progress
            await jobs.update(job_id, 0.5, "half")
            await jobs.update(job_id, 0.75)
            await jobs.complete(job_id, {"rows": 3, "by": os.getpid()})
            say("done")
            return 0
        if mode == "until-canceled":
            step = 0
            with anyio.move_on_after(GIVE_UP_AFTER):
                try:
                    while True:
                        step += 1
                        await jobs.update(job_id, min(step / 10_000, 0.99), f"step {step}")
                        await anyio.sleep(0.01)  # pacing, not synchronization
                except JobCanceledError:
                    say(f"canceled after {step} reports")
                    return EXIT_CANCELED
            sys.stderr.write(f"no cancel came in {GIVE_UP_AFTER} s\n")
            return 1
        if mode in {"once", "hang"}:
            await jobs.update(job_id, 0.3, "once")
            say("reported")
            if mode == "hang":
                await anyio.sleep_forever()
            return 0
    sys.stderr.write(f"unknown mode {mode!r}\n")
    return 1


def main(argv: list[str]) -> int:
    if len(argv) != 3:  # STORE JOB_ID MODE
        sys.stderr.write(__doc__ or "")
        return 2
    instrumentation.set_hooks([])
    spec, job_id, mode = argv
    store = open_store(spec)
    try:
        return anyio.run(report, store, job_id, mode)
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
