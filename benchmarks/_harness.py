"""A small harness: competitors run side by side in one process, interleaved, median of rounds.

Each competitor is an async callable ``run(n)`` doing ``n`` operations. Rounds
alternate between competitors so drift (CPU frequency, other load) affects all
alike; the figure per competitor is the median time per operation, and the
ratio is against the first competitor (the baseline).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence

import anyio
import attrs

Runner = Callable[[int], Awaitable[None]]


@attrs.frozen
class Competitor:
    name: str
    run: Runner
    backend: str = "asyncio"
    setup: Callable[[], object] | None = None
    teardown: Callable[[], object] | None = None


@attrs.frozen
class Result:
    name: str
    per_op_us: float
    ratio: float


def _time_one(competitor: Competitor, n: int) -> float:
    async def main() -> float:
        await competitor.run(max(n // 20, 1))  # warm up
        gc.collect()
        start = time.perf_counter()
        await competitor.run(n)
        return time.perf_counter() - start

    if competitor.setup is not None:
        competitor.setup()
    try:
        return anyio.run(main, backend=competitor.backend)
    finally:
        if competitor.teardown is not None:
            competitor.teardown()


def compare(title: str, competitors: Sequence[Competitor], *, n: int, rounds: int = 5) -> list[Result]:
    """Run every competitor ``rounds`` times (interleaved) and print per-op medians and ratios."""
    samples: dict[str, list[float]] = {c.name: [] for c in competitors}
    for _ in range(rounds):
        for competitor in competitors:
            samples[competitor.name].append(_time_one(competitor, n) / n * 1e6)
    base = statistics.median(samples[competitors[0].name])
    results = [
        Result(c.name, statistics.median(samples[c.name]), statistics.median(samples[c.name]) / base)
        for c in competitors
    ]
    width = max(len(c.name) for c in competitors)
    print(f"\n{title}  (n={n:,}, median of {rounds} rounds)")
    for result in results:
        print(f"  {result.name:<{width}}  {result.per_op_us:8.2f} µs/op   ratio {result.ratio:5.2f}")
    return results
