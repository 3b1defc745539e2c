"""Memory: bytes a finished job keeps in a MemoryStore, and flat memory with ``retention``.

Target (issue 8, default configuration): a finished trivial job keeps at most 600 bytes
in the default ``MemoryStore``, measured with ``tracemalloc`` over 100k jobs (the traced
memory after the jobs finished, minus before, divided by the number of jobs; the list of
refs the benchmark holds is freed before the second reading).
"""

from __future__ import annotations

import gc
import resource
import time
import tracemalloc

import anyio
import anyio.lowlevel

import anyjob
from benchmarks._harness import Spread, Target, configuration, report_target


async def job_work(ctx: anyjob.Context) -> None:
    return None


def _bytes_once(n: int, labels: dict[str, str] | None) -> float:
    async def main() -> float:
        async with anyjob.JobManager() as jobs:
            await jobs.wait((await jobs.submit(job_work, labels=labels)).id)  # warm every structure up
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            refs = [await jobs.submit(job_work, labels=labels) for _ in range(n)]
            for ref in refs:
                await jobs.wait(ref.id)
            del refs
            if (await jobs.stats()).active != 0:
                raise RuntimeError("every job should have finished")
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            return (after - before) / n

    with configuration("default"):
        return anyio.run(main)


def bytes_per_finished_job(n: int, rounds: int = 1) -> Target:
    """Bytes each finished job keeps in a MemoryStore, with and without a label."""
    print(
        f"\nBytes kept per finished job in the default MemoryStore "
        f"(tracemalloc, n={n:,}, default configuration)"
    )
    plain = Spread.of([_bytes_once(n, None) for _ in range(rounds)])
    print(f"  submit(f)                         {plain.format(0, ' B')}")
    labelled = Spread.of([_bytes_once(n, {"batch": "b"}) for _ in range(rounds)])
    print(f"  submit(f, labels={{'batch': 'b'}})  {labelled.format(0, ' B')}  (for information)")
    return report_target(Target(f"bytes per finished job ({n:,} jobs, tracemalloc)", plain, 600, " B", 0))


def _rss_mb() -> float:
    try:
        with open("/proc/self/status") as status:  # noqa: PTH123 - linux only, like the CI machine
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:  # pragma: no cover - not linux: the peak instead
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover


def flat_memory(n: int, report_every: int) -> list[float]:
    """Run *n* short jobs through a manager with retention; print RSS at intervals."""
    samples: list[float] = []

    async def main() -> None:
        async with anyjob.JobManager(retention=0.05, max_concurrency=64) as jobs:
            start = time.perf_counter()
            for i in range(1, n + 1):
                await jobs.submit(job_work)
                if i % 1000 == 0:
                    await anyio.lowlevel.checkpoint()  # let the workers and the cleanup keep up
                if i % report_every == 0:
                    stats = await jobs.stats()
                    samples.append(_rss_mb())
                    print(
                        f"  {i:>9,} jobs  RSS {samples[-1]:7.1f} MB  kept {stats.total:>7,}  "
                        f"{(time.perf_counter() - start) / i * 1e6:5.1f} µs/job (wall)"
                    )

    print(
        f"\n{n:,} jobs through JobManager(retention=0.05 s): resident memory at intervals "
        "(default configuration)"
    )
    with configuration("default"):
        anyio.run(main)
    half = samples[len(samples) // 2 :]
    growth = (max(half) - min(half)) if half else 0.0
    print(f"  -> target: flat; RSS spread over the second half {growth:.1f} MB (peak {max(samples):.1f} MB)")
    return samples
