"""The cost per job with many jobs already in the store (``bench_peers``' last table).

Each sample is a fresh store: *seed* no-op jobs really run through a default
``JobManager``, then their finished rows are copied in by SQL (new ids) until the store
holds the size measured (:func:`~benchmarks._peers_db.multiply_sqlite`,
:func:`~benchmarks._peers_db.multiply_postgres`); the change log is left as the seed
jobs made it (anyjob trims it to the last ten minutes, so a store that grew over days
holds few changes). Then *m* more lifecycles are timed, one by one, as in the first
table. Sizes alternate in order round by round.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import anyio
import attrs

from benchmarks._harness import Spread
from benchmarks._peers_db import multiply_postgres, multiply_sqlite, schema
from benchmarks._peers_runners import Contender, Sample


@attrs.frozen
class SizeResult:
    """One store's cost per job (µs) at each size, and the largest size's against the smallest's."""

    name: str
    per_job_us: dict[int, Spread]
    growth: Spread


def measure(
    contenders: Sequence[Contender], dsn: str | None, *, sizes: Sequence[int], seed: int, m: int, rounds: int
) -> list[SizeResult]:
    """Time *m* lifecycles over stores holding each of *sizes* jobs, for every contender (anyjob's)."""
    samples: dict[tuple[str, int], list[float]] = {(c.name, size): [] for c in contenders for size in sizes}
    with tempfile.TemporaryDirectory(prefix="anyjob-bench-sizes-") as directory:
        number = 0
        for round_ in range(rounds):
            order = list(sizes) if round_ % 2 == 0 else list(reversed(sizes))
            for contender in contenders:
                for size in order:
                    number += 1
                    seconds = _one(contender, dsn, directory, f"sizes_{number}", size=size, seed=seed, m=m)
                    samples[contender.name, size].append(seconds / m * 1e6)
    results: list[SizeResult] = []
    for contender in contenders:
        first, last = samples[contender.name, sizes[0]], samples[contender.name, sizes[-1]]
        results.append(
            SizeResult(
                contender.name,
                {size: Spread.of(samples[contender.name, size]) for size in sizes},
                Spread.of([b / a for a, b in zip(first, last, strict=True)]),
            )
        )
    return results


def _one(
    contender: Contender, dsn: str | None, directory: str, name: str, *, size: int, seed: int, m: int
) -> float:
    sample = Sample(dsn or "", name, str(Path(directory) / f"{name}.db"))
    factor = max(size // seed, 1)
    if not contender.postgres:
        anyio.run(contender.lifecycles, sample, seed, None)
        multiply_sqlite(sample.path, factor)
        return anyio.run(contender.lifecycles, sample, m, None)
    assert dsn is not None
    with schema(dsn, name):
        anyio.run(contender.lifecycles, sample, seed, None)
        multiply_postgres(dsn, name, factor)
        return anyio.run(contender.lifecycles, sample, m, None)


def print_table(
    results: Sequence[SizeResult], *, sizes: Sequence[int], seed: int, m: int, rounds: int
) -> None:
    print(
        f"\nCost per job with jobs already in the store: {m:,} lifecycles one by one, µs per job "
        f"(each store filled with finished jobs: {seed} run, then their rows copied by SQL; "
        f"{rounds} round(s), sizes alternating; wall time; median (min-max))"
    )
    width = max(len(r.name) for r in results)
    head = "".join(f"{_size(size) + ' in store':>24}" for size in sizes)
    print(f"  {'':<{width}}  {'':<10}{head}  {_size(sizes[-1])} / {_size(sizes[0])}")
    for result in results:
        cells = "".join(f"{result.per_job_us[size].format(0):>24}" for size in sizes)
        print(f"  {result.name:<{width}}  [default ]{cells}  {result.growth.format(2, 'x')}")


def _size(size: int) -> str:
    return f"{size // 1000}k" if size >= 1000 and size % 1000 == 0 else str(size)
