"""Calls per job: a deterministic figure for the manager's hot path.

cProfile counts every Python and C function call made on the thread while it is
enabled (the event loop's own work included). The profiler is enabled inside the event
loop, after a warm-up run, around one whole scenario (``async with JobManager()`` to its
exit); the figure is ``pstats.Stats.total_calls / jobs``. It does not depend on the
machine's speed or load, so a change to the hot path shows up in it exactly.
"""

from __future__ import annotations

import cProfile
import pstats
from collections.abc import Awaitable, Callable

import anyio

from benchmarks import bench_job, bench_manager
from benchmarks._harness import Config, configuration

Scenario = Callable[[int], Awaitable[None]]


def calls_per_op(run: Scenario, n: int, config: Config | None, backend: str = "asyncio") -> float:
    """cProfile total calls of ``run(n)``, divided by ``n``."""
    profiler = cProfile.Profile()

    async def main() -> None:
        await run(max(n // 20, 1))  # warm up (first-use caches)
        profiler.enable()
        try:
            await run(n)
        finally:
            profiler.disable()

    if config is None:
        anyio.run(main, backend=backend)
    else:
        with configuration(config):
            anyio.run(main, backend=backend)
    return pstats.Stats(profiler).total_calls / n  # type: ignore[attr-defined]


ROWS: list[tuple[str, Scenario, Config | None]] = [
    ("asyncio.TaskGroup, n tasks", bench_manager.task_group, None),
    ("JobManager(), n submits, then left", bench_manager.manager, "default"),
    ("  ...hooks silenced with set_hooks([])", bench_manager.manager, "silenced"),
    ("create_task each, then await each", bench_manager.create_task_await_each, None),
    ("JobManager(), submit each, then wait(id) each", bench_manager.manager_wait_each, "default"),
    ("  ...hooks silenced with set_hooks([])", bench_manager.manager_wait_each, "silenced"),
    ("await asyncio.create_task(f()) one after another", bench_job.bare_tasks, None),
    ("await Job(fn).run() one after another", bench_job.jobs, "default"),
    ("  ...hooks silenced with set_hooks([])", bench_job.jobs, "silenced"),
]


def main(n: int = 10_000) -> dict[str, float]:
    """Print calls per job (or task) for each scenario; default configuration unless labelled."""
    print(
        f"\nCalls per job (cProfile total calls / n, n={n:,}; deterministic; "
        "default configuration unless labelled)"
    )
    figures: dict[str, float] = {}
    width = max(len(label) for label, _, _ in ROWS)
    for label, run, config in ROWS:
        figures[label] = calls_per_op(run, n, config)
        print(f"  {label:<{width}}  [{config or '-':<8}]  {figures[label]:7.1f} calls/op")
    return figures


if __name__ == "__main__":
    main()
