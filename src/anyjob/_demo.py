"""The demo behind ``python -m anyjob demo``: a few jobs, live progress, a summary."""

from __future__ import annotations

import random
import sys

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


def _show(infos: list[anyjob.JobInfo]) -> None:
    for info in sorted(infos, key=lambda info: info.name):
        print(f"  {info.name:<9} {info.state.value:<10} [{_bar(info.progress)}] {info.message or ''}")


async def _demo() -> None:
    global _flaky_calls
    _flaky_calls = 0
    print("Six jobs run under a JobManager; 'backup' is canceled mid-run, 'parse' fails,")
    print("'flaky' is retried until it succeeds and 'hang' times out.\n")
    async with anyjob.JobManager(max_concurrency=6) as jobs:
        await jobs.submit(download, 12, name="download", labels={"kind": "io"})
        await jobs.submit(download, 6, name="thumbnail", labels={"kind": "io"}, priority=1)
        await jobs.submit(parse, name="parse")
        backup_ref = await jobs.submit(backup, name="backup")
        await jobs.submit(flaky, name="flaky", retry=anyjob.Retry(4, delay=0.1, backoff=2, jitter=0.05))
        await jobs.submit(hang, name="hang", retry=2, timeout=0.3)
        ticks = 0
        while (await jobs.stats()).active:
            # What a web page polling the job list would do.
            await anyio.sleep(0.2)
            ticks += 1
            if ticks == 2:
                await jobs.cancel(backup_ref.id)
                print("  ✗ canceling 'backup'")
            print(f"t={ticks * 0.2:.1f}s")
            _show(await jobs.list())

        print("\nSummary:")
        for info in sorted(await jobs.list(), key=lambda info: info.name):
            detail = f"result={info.result!r}" if info.error is None else f"{info.error_type}: {info.error}"
            duration = f"{info.duration:6.3f} s" if info.duration is not None else "     -  "
            print(
                f"  {info.name:<9} {info.state.value:<10} {duration}  attempts={info.attempts}  "
                f"progress={info.progress:.0%}  {detail}"
            )
        stats = await jobs.stats()
        counts = ", ".join(f"{state.value} {count}" for state, count in stats.by_state.items() if count)
        print(
            f"\nStatistics: {stats.total} jobs ({counts}); success rate {stats.success_rate:.0%}; "
            f"average duration {stats.average_duration:.3f} s"
        )


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
