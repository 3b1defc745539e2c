"""The demo behind ``python -m anyjob demo``: a few jobs, live progress bars, a summary.

``demo --serve`` serves the dashboard on 127.0.0.1 meanwhile and submits a new batch
every few seconds until Ctrl-C, so there is always something live to watch.
"""

from __future__ import annotations

import random
import sys
from typing import Any, cast

import anyio

import anyjob
from anyjob import instrumentation, progress
from anyjob._cli._common import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, CliError
from anyjob._cli._interrupt import Interrupts
from anyjob._cli._output import stdout

__all__ = ["run_demo"]


def _param(ctx: anyjob.Context, key: str, default: float) -> float:
    """A positive number from the params (a dict), or *default* (the dashboard may submit none)."""
    params: Any = ctx.params
    value: Any = default
    if isinstance(params, dict):
        value = cast("dict[str, Any]", params).get(key, default)
    return float(value) if isinstance(value, int | float) and value > 0 else default


def _pace(ctx: anyjob.Context) -> float:
    return _param(ctx, "pace", 1.0)


async def download(ctx: anyjob.Context) -> int:
    """Pretend to download ``params["chunks"]`` chunks, reporting progress."""
    chunks = int(_param(ctx, "chunks", 12))
    for i in range(chunks):
        await anyio.sleep((0.08 + random.random() * 0.08) * _pace(ctx))
        ctx.set_progress((i + 1) / chunks, f"chunk {i + 1}/{chunks}")
    return chunks * 64


async def parse(ctx: anyjob.Context) -> None:
    """Fail half-way with a recorded error."""
    for i in range(5):
        await anyio.sleep(0.12 * _pace(ctx))
        ctx.set_progress((i + 1) / 10, f"line {(i + 1) * 100}")
    msg = "unexpected token on line 500"
    raise ValueError(msg)


async def backup(ctx: anyjob.Context) -> None:
    """Run long enough to be canceled mid-run."""
    for i in range(100):
        await anyio.sleep(0.05 * _pace(ctx))
        ctx.set_progress((i + 1) / 100, f"file {i + 1}")


_flaky_calls: dict[str, int] = {}


async def flaky(ctx: anyjob.Context) -> str:
    """Fail twice, then succeed: the executor retries it."""
    calls = _flaky_calls[ctx.id] = _flaky_calls.get(ctx.id, 0) + 1
    ctx.set_progress(min(0.3 * calls, 0.9), f"connecting (call {calls})")
    await anyio.sleep(0.15 * _pace(ctx))
    if calls < 3:
        msg = f"connection reset (call {calls})"
        raise ConnectionError(msg)
    _flaky_calls.pop(ctx.id, None)
    ctx.set_progress(1.0, "connected")
    return "ok"


async def hang(ctx: anyjob.Context) -> None:
    """Never finish: the per-attempt timeout fails it."""
    ctx.set_progress(0.1, "waiting for a reply")
    await anyio.sleep_forever()


async def _batch(jobs: anyjob.JobManager, pace: float) -> list[str]:
    """Submit the demo's six jobs; their ids."""
    refs = [
        await jobs.submit(download, {"chunks": 12, "pace": pace}, name="download", labels={"kind": "io"}),
        await jobs.submit(
            download, {"chunks": 6, "pace": pace}, name="thumbnail", labels={"kind": "io"}, priority=1
        ),
        await jobs.submit(parse, {"pace": pace}, name="parse"),
        await jobs.submit(backup, {"pace": pace}, name="backup"),
        await jobs.submit(
            flaky,
            {"pace": pace},
            name="flaky",
            retry=anyjob.Retry(4, delay=0.2 * pace, backoff=2, jitter=0.05),
        ),
        await jobs.submit(hang, {"pace": pace}, name="hang", retry=2, timeout=round(0.6 * pace, 3)),
    ]
    return [ref.id for ref in refs]


async def _cancel_at(jobs: anyjob.JobManager, job_id: str, share: float, display: progress.Display) -> None:
    """Cancel *job_id* once its progress reaches *share* (what a person pressing "cancel" does)."""
    async for event in jobs.events(job_id):
        if event.state.is_done:
            return
        if event.progress >= share:
            if await jobs.cancel(job_id):
                display.print("[yellow]  ✗ canceling 'backup'[/]")
            return


async def _run_batch(
    jobs: anyjob.JobManager, pace: float, display: progress.Display, mine: list[str]
) -> None:
    ids = await _batch(jobs, pace)
    mine.extend(ids)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_cancel_at, jobs, ids[3], 0.3, display)
        async for _ in jobs.as_completed(ids):
            pass
        tg.cancel_scope.cancel()


async def _demo(pace: float, serve: tuple[str, int] | None) -> int:
    _flaky_calls.clear()
    console = stdout()
    console.print("Six jobs run under a JobManager; 'backup' is canceled mid-run, 'parse' fails,")
    console.print("'flaky' is retried until it succeeds and 'hang' times out. Ctrl-C cancels them.\n")
    mine: list[str] = []
    stop = anyio.Event()
    async with anyjob.JobManager(max_concurrency=6) as jobs:
        for fn in (download, parse, backup, flaky, hang):
            jobs.register(fn)  # the dashboard's "submit" finds them by name
        server = None
        if serve is not None:
            from anyjob._cli._serve import make_server  # noqa: PLC0415 - the web extra, only here

            server = make_server(jobs, *serve)

        async def graceful() -> None:
            stop.set()
            if server is not None:
                server.stop()
            for job_id in mine:
                await jobs.cancel(job_id)

        async with (
            progress.show(jobs, console=console) as display,
            Interrupts(graceful, console) as interrupts,
        ):
            instrumentation.set_hooks([lambda event: _print_retry(event, display)])
            async with anyio.create_task_group() as tg:
                if server is not None:
                    tg.start_soon(server.run)
                    display.print(f"[bold]Dashboard: {server.url}[/] (Ctrl-C to stop)")
                while not stop.is_set():
                    await _run_batch(jobs, pace, display, mine)
                    if server is None:
                        break
                    with anyio.move_on_after(3.0 * pace):
                        await stop.wait()
        infos = sorted(await jobs.list(limit=1000), key=lambda info: (info.name, info.created_at))
        console.print()
        console.print(progress.summary_table(infos))
        stats = await jobs.stats()
        counts = ", ".join(f"{state.value} {count}" for state, count in stats.by_state.items() if count)
        console.print(
            f"\nStatistics: {stats.total} jobs ({counts}); success rate {stats.success_rate:.0%}; "
            f"average duration {stats.average_duration:.3f} s"
        )
    return EXIT_INTERRUPTED if interrupts.interrupted else EXIT_OK


def _print_retry(event: instrumentation.HookEvent, display: progress.Display) -> None:
    if event.name == instrumentation.RETRY_SCHEDULED:
        display.print(
            f"  ↻ {event.job_name}: attempt {event.attempt} failed ({event.error!r}); "
            f"retrying in {event.wait:.2f} s",
            style="dim",
        )


def run_demo(backend: str = "asyncio", *, pace: float = 1.0, serve: tuple[str, int] | None = None) -> int:
    """Run the demo on *backend* (*pace* times slower; with *serve*, also the dashboard); the exit status."""
    if serve is not None and backend != "asyncio":
        sys.stderr.write("anyjob: error: demo --serve runs on asyncio (uvicorn): drop --backend trio\n")
        return EXIT_ERROR
    if not pace > 0:
        sys.stderr.write(f"anyjob: error: --pace must be more than 0, got {pace}\n")
        return EXIT_ERROR
    previous = instrumentation.get_hooks()
    # The demo is an application: it chooses what to show. Retries are printed above
    # the bars; the rest of the structlog output would run through them.
    instrumentation.set_hooks([])
    try:
        return anyio.run(_demo, pace, serve, backend=backend)
    except CliError as exc:
        sys.stderr.write(f"anyjob: error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("\nanyjob: interrupted\n")
        return EXIT_INTERRUPTED
    finally:
        instrumentation.set_hooks(previous)
        sys.stdout.flush()
