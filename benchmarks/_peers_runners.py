"""The contenders of ``bench_peers``: anyjob's durable stores and the peers, doing the same no-op jobs.

Each contender has two runners, ``lifecycles(sample, n, batch)`` and
``submits(sample, n, batch)``, returning the wall seconds the measured part took:

* lifecycles: one worker (anyjob: one default ``JobManager``) is up first; the clock
  starts, *n* no-op jobs are submitted (one by one, or *batch* at a time through the
  contender's batch path), and the clock stops once the database holds all *n* as
  finished (anyjob: once ``async with`` is left, which waits for them and writes them;
  the peers: once a look at their own table sees all *n* recorded, see
  :func:`~benchmarks._peers_db.recorded`);
* submits: the same submissions with nothing running them (anyjob: ``delay=1 h``, so
  they wait in the store as the peers' jobs do with no worker up).

Setting up (tables, a worker starting) and tearing down are not timed. Every
contender runs in its default configuration; what that is shows in its ``config``.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from importlib import metadata
from typing import Any, Final

import anyio
import attrs
import procrastinate
import psycopg
from pgqueuer import Job as PgqJob
from pgqueuer import PsycopgDriver, Queries, QueueManager
from psycopg import sql
from saq import Worker
from saq.queue.postgres import PostgresQueue

import anyjob
from anyjob.stores import PostgresStore, SQLiteStore
from benchmarks._harness import configuration
from benchmarks._peers_db import in_schema, recorded

#: Seconds a peer's worker gets to start (LISTEN, its loops) before the clock starts.
WORKER_START: Final = 0.1
#: anyjob's submit-only jobs wait this long before they are due (nothing runs them).
LATER: Final = 3600.0


@attrs.frozen
class Sample:
    """Where one sample runs: a fresh schema (PostgreSQL) and a fresh file path (SQLite)."""

    dsn: str
    schema: str
    path: str

    @property
    def peer_dsn(self) -> str:
        """The DSN with the sample's schema as ``search_path`` (for the peers)."""
        return in_schema(self.dsn, self.schema)


#: ``run(sample, n, batch)``: the wall seconds the measured part took.
Runner = Callable[[Sample, int, "int | None"], Awaitable[float]]


@attrs.frozen
class Contender:
    """One contender: its name, version and configuration, and its two runners."""

    name: str
    version: str
    config: str
    #: How it submits a batch (None: it has no way to).
    batch: str | None
    postgres: bool
    is_anyjob: bool
    lifecycles: Runner
    submits: Runner


def _chunks(n: int, batch: int) -> list[int]:
    return [min(batch, n - start) for start in range(0, n, batch)]


# -- anyjob ------------------------------------------------------------------------------


async def anyjob_noop(ctx: anyjob.Context) -> None:
    """anyjob's no-op job."""


def anyjob_batch_path() -> str:
    """What anyjob's batched rows use: ``submit_many`` if JobManager has it, else concurrent submits."""
    if hasattr(anyjob.JobManager, "submit_many"):
        return "JobManager.submit_many (one call per batch)"
    return "none (no submit_many): the batch's submit() calls run concurrently in a task group"


async def _anyjob_batch(jobs: anyjob.JobManager, count: int, delay: float | None) -> None:
    many: Any = getattr(jobs, "submit_many", None)
    if many is not None:
        if next(iter(inspect.signature(many).parameters)) != "fn":
            msg = "JobManager.submit_many has a signature bench_peers does not know: update _anyjob_batch"
            raise RuntimeError(msg)
        await many(anyjob_noop, [None] * count, delay=delay)
        return
    async with anyio.create_task_group() as tg:
        for _ in range(count):
            tg.start_soon(_anyjob_submit, jobs, delay)


async def _anyjob_submit(jobs: anyjob.JobManager, delay: float | None) -> None:
    await jobs.submit(anyjob_noop, delay=delay)


async def _anyjob_submit_all(jobs: anyjob.JobManager, n: int, batch: int | None, delay: float | None) -> None:
    if batch is None:
        for _ in range(n):
            await jobs.submit(anyjob_noop, delay=delay)
    else:
        for count in _chunks(n, batch):
            await _anyjob_batch(jobs, count, delay)


async def _check_finished(jobs: anyjob.JobManager, n: int) -> None:
    """Leaving ran every job to its end (so the figure counts whole lifecycles): say so if not."""
    stats = await jobs.stats()
    if stats.active or stats.by_state[anyjob.State.SUCCEEDED] < n:
        msg = f"not every one of the {n} jobs ended SUCCEEDED in the store: {stats.by_state}"
        raise RuntimeError(msg)


def _anyjob_runners(make: Callable[[Sample], SQLiteStore | PostgresStore]) -> tuple[Runner, Runner]:
    async def lifecycles(sample: Sample, n: int, batch: int | None) -> float:
        store = make(sample)
        try:
            with configuration("default"):
                jobs = anyjob.JobManager(store)
                jobs.register(anyjob_noop)
                async with jobs:
                    start = time.perf_counter()
                    await _anyjob_submit_all(jobs, n, batch, None)
                elapsed = time.perf_counter() - start
                await _check_finished(jobs, n)
                return elapsed
        finally:
            store.close()

    async def submits(sample: Sample, n: int, batch: int | None) -> float:
        store = make(sample)
        try:
            with configuration("default"):
                jobs = anyjob.JobManager(store)
                jobs.register(anyjob_noop)  # registered: leaving leaves its waiting jobs waiting
                async with jobs:
                    start = time.perf_counter()
                    await _anyjob_submit_all(jobs, n, batch, LATER)
                    return time.perf_counter() - start
        finally:
            store.close()

    return lifecycles, submits


def anyjob_sqlite(*, synchronous: str = "FULL") -> Contender:
    """anyjob over a new SQLiteStore file per sample (default: ``synchronous="FULL"``)."""

    def make(sample: Sample) -> SQLiteStore:
        if synchronous == "FULL":
            return SQLiteStore(sample.path)
        return SQLiteStore(sample.path, synchronous=synchronous)

    lifecycles, submits = _anyjob_runners(make)
    default = synchronous == "FULL"
    return Contender(
        name="anyjob SQLiteStore" + ("" if default else f" synchronous={synchronous}"),
        version=metadata.version("anyjob"),
        config="JobManager(SQLiteStore(path))"
        + ("" if default else f", synchronous={synchronous!r} (tuned)"),
        batch=anyjob_batch_path(),
        postgres=False,
        is_anyjob=True,
        lifecycles=lifecycles,
        submits=submits,
    )


def anyjob_postgres() -> Contender:
    """anyjob over a PostgresStore in the sample's schema."""
    lifecycles, submits = _anyjob_runners(lambda sample: PostgresStore(sample.dsn, schema=sample.schema))
    return Contender(
        name="anyjob PostgresStore",
        version=metadata.version("anyjob"),
        config="JobManager(PostgresStore(dsn, schema=...))",
        batch=anyjob_batch_path(),
        postgres=True,
        is_anyjob=True,
        lifecycles=lifecycles,
        submits=submits,
    )


# -- saq (PostgresQueue) -------------------------------------------------------------------


async def saq_noop(ctx: Any) -> None:
    """saq's no-op job (registered by its ``__qualname__``)."""


async def _saq_enqueue(queue: PostgresQueue, n: int, batch: int | None) -> None:
    name = saq_noop.__qualname__
    if batch is None:
        for _ in range(n):
            await queue.enqueue(name)
        return
    for count in _chunks(n, batch):
        async with anyio.create_task_group() as tg:
            for _ in range(count):
                tg.start_soon(queue.enqueue, name)


async def _saq_lifecycles(sample: Sample, n: int, batch: int | None) -> float:
    queue = PostgresQueue(url=sample.peer_dsn)
    await queue.connect()
    worker = Worker(queue, functions=[saq_noop])
    worker.SIGNALS = []  # not the process's SIGINT/SIGTERM (it resets them to the defaults when it stops)
    start = end = 0.0  # set in the task group (which type checkers think may swallow errors)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.start)
            await anyio.sleep(WORKER_START)
            start = time.perf_counter()
            await _saq_enqueue(queue, n, batch)
            end = await recorded(
                sample.peer_dsn,
                sql.SQL("SELECT COUNT(*) >= {} FROM saq_jobs WHERE status = 'complete'").format(n),
            )
            # saq's stop() can leave a dequeue waiting on LISTEN forever (a cancellation lost in
            # asyncio.wait_for), and disconnect() does not end the LISTEN: end it first.
            await queue._listener.close()
            await worker.stop()  # start() returns then
        return end - start
    finally:
        await queue.disconnect()


async def _saq_submits(sample: Sample, n: int, batch: int | None) -> float:
    queue = PostgresQueue(url=sample.peer_dsn)
    await queue.connect()
    try:
        start = time.perf_counter()
        await _saq_enqueue(queue, n, batch)
        return time.perf_counter() - start
    finally:
        await queue.disconnect()


def saq() -> Contender:
    """saq's PostgresQueue and one Worker, both as their defaults make them."""
    return Contender(
        name="saq PostgresQueue",
        version=metadata.version("saq"),
        config="PostgresQueue(url=...), Worker(queue, [fn]) (concurrency 10, a pool of 4-20 connections)",
        batch="none (no batch insert): the batch's enqueue() calls run concurrently, as Queue.map does",
        postgres=True,
        is_anyjob=False,
        lifecycles=_saq_lifecycles,
        submits=_saq_submits,
    )


# -- pgqueuer --------------------------------------------------------------------------------


async def _pgq_enqueue(queries: Queries, n: int, batch: int | None) -> None:
    if batch is None:
        for _ in range(n):
            await queries.enqueue("noop", None)
        return
    for count in _chunks(n, batch):
        await queries.enqueue(["noop"] * count, [None] * count, [0] * count)


async def _pgq_lifecycles(sample: Sample, n: int, batch: int | None) -> float:
    dsn = sample.peer_dsn
    async with (
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as worker_conn,
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as producer_conn,
    ):
        await Queries(PsycopgDriver(worker_conn)).install()
        manager = QueueManager(Queries(PsycopgDriver(worker_conn)))

        @manager.entrypoint("noop")
        async def noop(job: PgqJob) -> None:
            return None

        producer = Queries(PsycopgDriver(producer_conn))
        start = end = 0.0  # set in the task group (which type checkers think may swallow errors)
        async with anyio.create_task_group() as tg:
            tg.start_soon(manager.run)
            await anyio.sleep(WORKER_START)
            start = time.perf_counter()
            await _pgq_enqueue(producer, n, batch)
            # A finished job leaves the queue table (for the log) once its buffered status is written.
            end = await recorded(dsn, sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM pgqueuer)"))
            manager.shutdown.set()
        return end - start


async def _pgq_submits(sample: Sample, n: int, batch: int | None) -> float:
    async with await psycopg.AsyncConnection.connect(sample.peer_dsn, autocommit=True) as conn:
        queries = Queries(PsycopgDriver(conn))
        await queries.install()
        start = time.perf_counter()
        await _pgq_enqueue(queries, n, batch)
        return time.perf_counter() - start


def pgqueuer() -> Contender:
    """pgqueuer over psycopg: one QueueManager (its defaults), the producer on its own connection."""
    return Contender(
        name="pgqueuer",
        version=metadata.version("pgqueuer"),
        config="QueueManager(Queries(PsycopgDriver(conn))).run() (batch_size 10); producer: a 2nd connection",
        batch="Queries.enqueue(lists) (one INSERT per batch)",
        postgres=True,
        is_anyjob=False,
        lifecycles=_pgq_lifecycles,
        submits=_pgq_submits,
    )


# -- procrastinate ---------------------------------------------------------------------------


def _procrastinate_app(dsn: str) -> tuple[procrastinate.App, Any]:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))

    @app.task(name="noop")
    async def noop() -> None:
        return None

    return app, noop


async def _procrastinate_defer(task: Any, n: int, batch: int | None) -> None:
    if batch is None:
        for _ in range(n):
            await task.defer_async()
        return
    for count in _chunks(n, batch):
        await task.batch_defer_async(*({} for _ in range(count)))


async def _procrastinate_lifecycles(sample: Sample, n: int, batch: int | None) -> float:
    app, task = _procrastinate_app(sample.peer_dsn)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        start = end = 0.0  # set in the task group (which type checkers think may swallow errors)
        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(app.run_worker_async, install_signal_handlers=False))
            await anyio.sleep(WORKER_START)
            start = time.perf_counter()
            await _procrastinate_defer(task, n, batch)
            end = await recorded(
                sample.peer_dsn,
                sql.SQL("SELECT COUNT(*) >= {} FROM procrastinate_jobs WHERE status = 'succeeded'").format(n),
            )
            tg.cancel_scope.cancel()  # the worker stops gracefully when cancelled
        return end - start


async def _procrastinate_submits(sample: Sample, n: int, batch: int | None) -> float:
    app, task = _procrastinate_app(sample.peer_dsn)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        start = time.perf_counter()
        await _procrastinate_defer(task, n, batch)
        return time.perf_counter() - start


def procrastinate_() -> Contender:
    """procrastinate's App over psycopg and one worker, both as their defaults make them."""
    return Contender(
        name="procrastinate",
        version=metadata.version("procrastinate"),
        config="App(PsycopgConnector(conninfo=...)).run_worker_async() (concurrency 1, a pool)",
        batch="Task.batch_defer_async (one INSERT per batch)",
        postgres=True,
        is_anyjob=False,
        lifecycles=_procrastinate_lifecycles,
        submits=_procrastinate_submits,
    )


def contenders(*, postgres: bool) -> list[Contender]:
    """Every contender: anyjob's SQLiteStore (default, then tuned), then, with *postgres*, the rest."""
    found = [anyjob_sqlite(), anyjob_sqlite(synchronous="NORMAL")]
    if postgres:
        found += [anyjob_postgres(), saq(), pgqueuer(), procrastinate_()]
    return found
