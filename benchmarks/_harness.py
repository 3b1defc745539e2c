"""A small harness: competitors run side by side in one process, alternating, over several rounds.

Each competitor is an async callable ``run(n)`` doing ``n`` operations. Every round
times each competitor once (in a fresh event loop, after a short warm-up); the order
is reversed every other round, so drift (CPU frequency, other load) and order effects
fall on every side alike. A competitor's figure is its median time per operation over
the rounds, with the fastest and slowest round beside it; its ratio is computed round
by round against the first competitor (the baseline) of the same round, and reported
the same way: median (min-max).

Time is the benchmark process's CPU time (``time.process_time``) by default: these loops
are single-threaded and never wait for I/O, so on an idle machine it equals wall time, and
on a shared one other processes' load does not count. ``use_clock("wall")`` (the command's
``--clock wall``) times with ``time.perf_counter`` instead.

Every anyjob competitor names the configuration it runs in, and the harness checks it
before every sample, so a label cannot lie (the code a user would write instead has
none, shown as ``-``):

* ``default``: what a new user has: anyjob's hooks as shipped (one ``StructlogHook``)
  and structlog never configured in this process;
* ``silenced``: the same, with ``instrumentation.set_hooks([])`` for that sample only;
* ``tuned``: structlog configured by the application (only in the subprocess that
  ``benchmarks.bench_tuned`` runs in), hooks as shipped.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Literal

import anyio
import attrs
import structlog

from anyjob import instrumentation

#: Runs the scenario for n operations; one that returns a float timed itself (seconds on
#: :func:`now`, for a scenario whose setup is not what is measured), else it is timed whole.
Runner = Callable[[int], Awaitable[float | None]]
Config = Literal["default", "silenced", "tuned"]

MIN_ROUNDS = 5

_clocks: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}
_clock = _clocks["cpu"]


def use_clock(name: str) -> None:
    """Time with ``"cpu"`` (process CPU time, the default) or ``"wall"`` (``perf_counter``)."""
    global _clock
    _clock = _clocks[name]


def now() -> float:
    """The clock in use (cpu or wall seconds), for runners that time a part of themselves."""
    return _clock()


def clock_name() -> str:
    return next(name for name, clock in _clocks.items() if clock is _clock)


@attrs.frozen
class Spread:
    """A median with the smallest and largest value it was taken from."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))

    def format(self, digits: int = 2, unit: str = "") -> str:
        return f"{self.median:.{digits}f}{unit} ({self.low:.{digits}f}-{self.high:.{digits}f})"


DESCRIPTIONS: dict[Config, str] = {
    "default": "default configuration: hooks as shipped, structlog unconfigured",
    "silenced": "hooks silenced with set_hooks([]), structlog unconfigured",
    "tuned": "hooks as shipped, structlog configured to filter below WARNING, cached loggers",
}


@attrs.frozen
class Competitor:
    name: str
    run: Runner
    backend: str = "asyncio"
    #: None for the code a user would write instead (no anyjob in it: nothing to check).
    config: Config | None = None


@attrs.frozen
class Result:
    name: str
    config: Config | None
    per_op_us: Spread
    ratio: Spread


def _is_default_hooks() -> bool:
    hooks = instrumentation.get_hooks()
    return len(hooks) == 1 and type(hooks[0]) is instrumentation.StructlogHook


@contextlib.contextmanager
def configuration(config: Config) -> Iterator[None]:
    """Check (and for ``silenced``, apply) *config* around one sample."""
    if not _is_default_hooks():
        msg = f"a {config!r} sample needs anyjob's hooks as shipped, found {instrumentation.get_hooks()!r}"
        raise RuntimeError(msg)
    if config == "tuned":
        if not structlog.is_configured():
            raise RuntimeError("a 'tuned' sample needs structlog configured (run it through bench_tuned)")
        yield
        return
    if structlog.is_configured():
        msg = f"a {config!r} sample needs structlog unconfigured, but this process configured it"
        raise RuntimeError(msg)
    if config == "default":
        yield
        return
    saved = instrumentation.get_hooks()
    instrumentation.set_hooks([])
    try:
        yield
    finally:
        instrumentation.set_hooks(saved)


def _time_one(competitor: Competitor, n: int) -> float:
    async def main() -> float:
        await competitor.run(max(n // 20, 1))  # warm up
        gc.collect()
        clock = _clock
        start = clock()
        timed = await competitor.run(n)
        elapsed = clock() - start
        return elapsed if timed is None else timed

    if competitor.config is None:
        return anyio.run(main, backend=competitor.backend)
    with configuration(competitor.config):
        return anyio.run(main, backend=competitor.backend)


def compare(title: str, competitors: Sequence[Competitor], *, n: int, rounds: int) -> list[Result]:
    """Time every competitor ``rounds`` times, alternating, and print medians, spreads and ratios."""
    if rounds < MIN_ROUNDS:
        msg = f"rounds must be at least {MIN_ROUNDS} for a spread worth printing, got {rounds}"
        raise ValueError(msg)
    samples: dict[str, list[float]] = {c.name: [] for c in competitors}
    began = time.perf_counter()
    for round_ in range(rounds):
        order = competitors if round_ % 2 == 0 else list(reversed(competitors))
        for competitor in order:
            samples[competitor.name].append(_time_one(competitor, n) / n * 1e6)
    base = samples[competitors[0].name]
    results = [
        Result(
            c.name,
            c.config,
            Spread.of(samples[c.name]),
            Spread.of([t / b for t, b in zip(samples[c.name], base, strict=True)]),
        )
        for c in competitors
    ]
    width = max(len(c.name) for c in competitors)
    print(
        f"\n{title}\n  (n={n:,}, {rounds} rounds alternating, {clock_name()} time; "
        f"median (min-max) over rounds; took {time.perf_counter() - began:.0f} s)"
    )
    for result in results:
        ratio = "baseline" if result is results[0] else f"ratio {result.ratio.format()}"
        config = result.config or "-"
        print(f"  {result.name:<{width}}  [{config:<8}]  {result.per_op_us.format(2, ' µs')}  {ratio}")
    return results


@attrs.frozen
class Target:
    """One figure of the issue's targets: its median must be at most ``limit``."""

    label: str
    figure: Spread
    limit: float
    unit: str = "x"
    #: three digits: a median of 1.003x must not read "1.00x FAIL"
    digits: int = 3
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.figure.median <= self.limit

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        note = f"  [{self.note}]" if self.note else ""
        return (
            f"{verdict}  {self.label}: target <= {self.limit:g}{self.unit}, "
            f"median {self.figure.format(self.digits, self.unit)}{note}"
        )


def report_target(target: Target) -> Target:
    """Print *target* right away (its section) and hand it back for the summary."""
    print(f"  -> {target.line()}")
    return target
