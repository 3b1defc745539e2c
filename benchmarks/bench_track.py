"""Tracked blocks: ``async with jobs.track("x"): pass`` against ``await Job(fn).run()``.

Target (default configuration: hooks as shipped, structlog unconfigured, the default
``MemoryStore``): tracking an empty block in an open ``JobManager()`` costs no more than
running an empty job with ``Job(fn).run()``, both n times one after another on asyncio.
Only the n blocks are timed, not opening and leaving the manager (one manager holds all
of them, as an application's would); ``Job(fn).run()`` needs no setup and is timed whole.
For reference, the default row also times ``await jobs.wait((await jobs.submit(fn)).id)``
n times in one manager: the same job recorded by id, run by the manager's workers.
The same comparison with silenced hooks (``set_hooks([])``) follows, then the calls per
block (cProfile, as ``bench_calls`` counts them: the whole scenario, the manager's
opening and leaving included, over n).
"""

from __future__ import annotations

import anyjob
from benchmarks import bench_calls, bench_job
from benchmarks._harness import DESCRIPTIONS, Competitor, Config, Result, Target, compare, now, report_target


async def blocks(n: int) -> float:
    async with anyjob.JobManager() as jobs:
        start = now()
        for _ in range(n):
            async with jobs.track("x"):
                pass
        return now() - start


async def submit_wait_each(n: int) -> float:
    """For reference: the same job through the manager's workers, one at a time."""
    async with anyjob.JobManager() as jobs:
        start = now()
        for _ in range(n):
            await jobs.wait((await jobs.submit(bench_job.job_work)).id)
        return now() - start


def compare_track(n: int, rounds: int, config: Config, *, references: bool = False) -> list[Result]:
    """n tracked empty blocks in one manager against n ``Job(fn).run()``, one after another."""
    competitors = [
        Competitor("await anyjob.Job(fn).run()", bench_job.jobs, config=config),
        Competitor('async with jobs.track("x"): pass', blocks, config=config),
    ]
    if references:
        competitors.append(
            Competitor("  ...for reference: submit(fn), wait(id)", submit_wait_each, config=config)
        )
    return compare(
        "track() of an empty block vs Job(fn).run() of an empty job, one after another "
        f"({DESCRIPTIONS[config]})",
        competitors,
        n=n,
        rounds=rounds,
    )


def headline(n: int, rounds: int) -> Target:
    """The default-configuration target row (and, for reference, submit + wait each)."""
    results = compare_track(n, rounds, "default", references=True)
    return report_target(Target(f"{n:,} tracked empty blocks vs Job(fn).run() each", results[1].ratio, 1.0))


def silenced(n: int, rounds: int) -> list[Result]:
    """The same comparison with ``set_hooks([])`` on both sides."""
    return compare_track(n, rounds, "silenced")


async def _blocks_untimed(n: int) -> None:
    await blocks(n)


ROWS: list[tuple[str, bench_calls.Scenario, Config]] = [
    ("await Job(fn).run() one after another", bench_job.jobs, "default"),
    ('JobManager(), async with jobs.track("x"): pass each', _blocks_untimed, "default"),
    ("  ...Job(fn).run(), hooks silenced", bench_job.jobs, "silenced"),
    ("  ...track(), hooks silenced", _blocks_untimed, "silenced"),
]


def calls(n: int) -> dict[str, float]:
    """Print calls per block (and per ``Job.run``, beside it), as ``bench_calls`` does."""
    print(f"\nCalls per tracked block (cProfile total calls / n, n={n:,}; deterministic)")
    figures: dict[str, float] = {}
    width = max(len(label) for label, _, _ in ROWS)
    for label, run, config in ROWS:
        figures[label] = bench_calls.calls_per_op(run, n, config)
        print(f"  {label:<{width}}  [{config:<8}]  {figures[label]:7.1f} calls/op")
    return figures


def main(n: int = 20_000, rounds: int = 5, calls_n: int = 10_000) -> Target:
    """The target row, the silenced row, then calls per block."""
    target = headline(n, rounds)
    silenced(n, rounds)
    calls(calls_n)
    return target


if __name__ == "__main__":
    main()
