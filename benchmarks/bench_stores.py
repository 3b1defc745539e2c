"""For information: trivial jobs through a manager over each durable store (no target).

Wall time (``time.perf_counter``): these stores work in worker threads and wait for
the disk or the server, which CPU time would not count. Default configuration.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
import time
from collections.abc import Callable

import anyio

import anyjob
from anyjob.stores import PostgresStore, SQLiteStore
from benchmarks._harness import configuration

POSTGRES_DSN = os.environ.get("ANYJOB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SCHEMA = "anyjob_bench"


async def job_work(ctx: anyjob.Context) -> None:
    return None


def _postgres_reachable() -> str | None:
    """None when the server answers, else why not."""
    try:
        import psycopg

        psycopg.connect(POSTGRES_DSN, connect_timeout=3).close()
    except Exception as exc:
        return str(exc).strip() or type(exc).__name__
    return None


def main(n: int = 1_000) -> None:
    """Time *n* submits, then the manager left, over SQLiteStore and (if reachable) PostgresStore."""
    print(
        f"\nFor information: {n:,} trivial jobs through JobManager over a durable store "
        "(wall time, default configuration)"
    )
    with tempfile.TemporaryDirectory() as directory:
        stores: list[tuple[str, Callable[[], SQLiteStore | PostgresStore]]] = [
            ("SQLiteStore (a file, WAL)", lambda: SQLiteStore(pathlib.Path(directory) / "bench.db")),
        ]
        if (why := _postgres_reachable()) is not None:
            print(f"  PostgresStore: skipped ({why})")
        else:
            stores.append(("PostgresStore (localhost)", lambda: PostgresStore(POSTGRES_DSN, schema=SCHEMA)))
        for label, make in stores:
            store = make()

            async def run(store: SQLiteStore | PostgresStore = store) -> float:
                start = time.perf_counter()
                async with anyjob.JobManager(store) as jobs:
                    for _ in range(n):
                        await jobs.submit(job_work)
                return time.perf_counter() - start

            try:
                with configuration("default"):
                    elapsed = anyio.run(run)
            finally:
                store.close()
            print(f"  {label:<28} {elapsed / n * 1e6:9.1f} µs/job")
    if len(stores) > 1:
        import psycopg

        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')


if __name__ == "__main__":
    main()
