"""The demo behind ``python -m anyjob demo``: a few jobs, live progress, a summary."""

from __future__ import annotations

import random
import sys
from typing import Any

import anyio

import anyjob
from anyjob import instrumentation

_BAR = 24


def _bar(progress: float) -> str:
    filled = round(progress * _BAR)
    return "#" * filled + "." * (_BAR - filled)


async def download(ctx: anyjob.Context) -> int:
    """Pretend to download ``ctx.params`` chunks, reporting progress."""
    chunks: int = ctx.params
    for i in range(chunks):
        await anyio.sleep(0.03 + random.random() * 0.03)
        ctx.set_progress((i + 1) / chunks, f"chunk {i + 1}/{chunks}")
    return chunks * 64


async def parse(ctx: anyjob.Context) -> None:
    """Fail half-way with a recorded error."""
    for i in range(5):
        await anyio.sleep(0.05)
        ctx.set_progress((i + 1) / 10, f"line {(i + 1) * 100}")
    msg = "unexpected token on line 500"
    raise ValueError(msg)


async def backup(ctx: anyjob.Context) -> None:
    """Run long enough to be canceled mid-run."""
    for i in range(100):
        await anyio.sleep(0.04)
        ctx.set_progress((i + 1) / 100, f"file {i + 1}")


_flaky_calls = 0


async def flaky(ctx: anyjob.Context) -> str:
    """Fail twice, then succeed: the executor retries it."""
    global _flaky_calls
    _flaky_calls += 1
    await anyio.sleep(0.05)
    if _flaky_calls < 3:
        msg = f"connection reset (call {_flaky_calls})"
        raise ConnectionError(msg)
    ctx.set_progress(1.0, "connected")
    return "ok"


async def hang(ctx: anyjob.Context) -> None:
    """Never finish: the per-attempt timeout fails it."""
    ctx.set_progress(0.1, "waiting for a reply")
    await anyio.sleep_forever()


def _print_retry(event: instrumentation.HookEvent) -> None:
    if event.name == instrumentation.RETRY_SCHEDULED:
        print(
            f"  ↻ {event.job_name}: attempt {event.attempt} failed ({event.error!r}); "
            f"retrying in {event.wait:.2f} s"
        )


def _show(jobs: list[anyjob.Job[Any]]) -> None:
    for job in jobs:
        print(f"  {job.name:<9} {job.state.value:<10} [{_bar(job.progress)}] {job.message or ''}")


async def _demo() -> None:
    print("Five jobs run concurrently; 'backup' is canceled mid-run, 'parse' fails.\n")
    jobs: list[anyjob.Job[Any]] = [
        anyjob.Job(download, name="download", labels={"kind": "io"}),
        anyjob.Job(download, name="thumbnail", labels={"kind": "io"}),
        anyjob.Job(parse, name="parse"),
        anyjob.Job(backup, name="backup"),
    ]
    retrying = anyjob.Executor(
        anyjob.Job(flaky, name="flaky"), retry=anyjob.Retry(4, delay=0.1, backoff=2, jitter=0.05)
    )
    timing_out = anyjob.Executor(anyjob.Job(hang, name="hang"), retry=2, timeout=0.3)
    shown = [*jobs, retrying.job, timing_out.job]
    outcomes: dict[str, str] = {}

    async def run_executor(executor: anyjob.Executor[Any]) -> None:
        try:
            outcomes[executor.job.name] = f"returned {await executor.start()!r}"
        except Exception as exc:  # noqa: BLE001 - the demo reports it
            outcomes[executor.job.name] = f"raised {type(exc).__name__}: {exc}"

    async with anyio.create_task_group() as tg:
        await tg.start(jobs[0].run, 12)
        await tg.start(jobs[1].run, 6)
        await tg.start(jobs[2].run)
        await tg.start(jobs[3].run)
        tg.start_soon(run_executor, retrying)
        tg.start_soon(run_executor, timing_out)
        ticks = 0
        while any(job.is_executing for job in shown) or retrying.is_running or timing_out.is_running:
            await anyio.sleep(0.2)
            ticks += 1
            if ticks == 2:
                jobs[3].cancel()
                print("  ✗ canceling 'backup'")
            print(f"t={ticks * 0.2:.1f}s")
            _show(shown)

    print("\nSummary:")
    for job in shown:
        stats = job.stats()
        detail = f"result={job.result!r}" if stats.error is None else f"error={stats.error!r}"
        print(
            f"  {stats.name:<9} {stats.state.value:<10} "
            f"{stats.execution_time.total_seconds():6.3f} s  progress={stats.progress:.0%}  {detail}"
        )
    print("\nExecutors:")
    for executor in (retrying, timing_out):
        print(f"  {executor.job.name:<9} {outcomes.get(executor.job.name)}  {executor.stats()}")


def run_demo(backend: str = "asyncio") -> int:
    """Run the demo on *backend*; returns the exit status."""
    previous = instrumentation.get_hooks()
    # The demo is an application: it chooses what to show. Retries are printed; the
    # rest of the structlog output would interleave with the live table.
    instrumentation.set_hooks([_print_retry])
    try:
        anyio.run(_demo, backend=backend)
    finally:
        instrumentation.set_hooks(previous)
    sys.stdout.flush()
    return 0
