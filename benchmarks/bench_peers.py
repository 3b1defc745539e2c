"""anyjob's durable stores against the peers on PostgreSQL, in one run (issue 10, deliverable 4).

``python -m benchmarks peers [--quick]``. The peers are the job queues installed from the
package index by the ``bench`` extra: saq (its PostgreSQL queue), pgqueuer (over psycopg,
the driver installed) and procrastinate. Everyone runs the same no-op jobs on this machine,
in the same process kind (one event loop, asyncio), against one PostgreSQL server; every
sample gets a fresh schema (or SQLite file) of its own, in a database made for the run.

Measures (wall time, ``time.perf_counter``: the work waits for the disk and the server):

* lifecycles per second: jobs submitted, run by one worker (anyjob: one default
  ``JobManager``) and recorded finished, submitted one by one, then in batches through
  each contender's batch path;
* submits per second with nothing running them, one by one and batched;
* anyjob's cost per job with 1k, 10k and 100k jobs already in the store (``_peers_sizes``).

Rounds are interleaved: every round runs each contender once, in reversed order every
other round. Figures are medians with the fastest and slowest round; a ratio against the
best peer is taken round by round against that peer's sample of the same round. The
headline rows are anyjob's default configuration (``JobManager(store)``, hooks as shipped,
structlog unconfigured); the row marked ``tuned`` follows it. The peers run in their own
defaults (see ``config`` in ``_peers_runners``). Targets are printed PASS/FAIL at the end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import signal
import tempfile
import time
from collections.abc import Generator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Final, Literal

import anyio
import attrs
import psycopg

from benchmarks._harness import MIN_ROUNDS, Spread
from benchmarks._peers_db import database, database_name, schema, unreachable
from benchmarks._peers_runners import Contender, Sample, anyjob_batch_path, contenders
from benchmarks._peers_sizes import measure, print_table

Measure = Literal["lifecycles", "submits"]

FULL: Final = {
    "rounds": MIN_ROUNDS,
    "size_rounds": 3,
    "lifecycles": 500,
    "submits": 500,
    "batched": 1_000,
    "batch": 100,
    "seed": 100,
    "sizes_m": 500,
}
QUICK: Final = {
    "rounds": 1,
    "size_rounds": 1,
    "lifecycles": 20,
    "submits": 20,
    "batched": 40,
    "batch": 10,
    "seed": 10,
    "sizes_m": 10,
}
FULL_SIZES: Final = (1_000, 10_000, 100_000)
QUICK_SIZES: Final = (100, 1_000)
#: The targets of issue 10.
SQLITE_LIFECYCLES: Final = 10_000.0
PEER_FACTOR: Final = 2.0
#: "Flat": the cost per job at the largest size at most this many times the smallest's.
FLAT: Final = 1.25


@attrs.frozen
class Row:
    """A contender's rate over the rounds (jobs per second), and the samples in round order."""

    contender: Contender
    rate: Spread  # jobs per second
    samples: tuple[float, ...]


@attrs.frozen
class Goal:
    """One target: its median must be at least (or at most) ``limit``."""

    label: str
    figure: Spread | None  # None: not measured in this run
    limit: float
    at_least: bool
    unit: str
    note: str = ""

    def line(self) -> str:
        note = f"  [{self.note}]" if self.note else ""
        sign = ">=" if self.at_least else "<="
        if self.figure is None:
            return f"n/a   {self.label}: target {sign} {self.limit:,g}{self.unit}, not measured{note}"
        median = self.figure.median
        passed = median >= self.limit if self.at_least else median <= self.limit
        digits = 0 if self.unit == "/s" else 3  # three: a median of 1.253x must not read "1.25x FAIL"
        return (
            f"{'PASS' if passed else 'FAIL'}  {self.label}: target {sign} {self.limit:,g}{self.unit}, "
            f"median {self.figure.format(digits, self.unit)}{note}"
        )


def run_measure(
    title: str,
    field: Measure,
    entrants: Sequence[Contender],
    dsn: str | None,
    *,
    n: int,
    batch: int | None,
    rounds: int,
) -> list[Row]:
    """Time every contender *rounds* times, alternating; print the table; hand back the rows."""
    samples: dict[str, list[float]] = {c.name: [] for c in entrants}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="anyjob-bench-peers-") as directory:
        for round_ in range(rounds):
            order = entrants if round_ % 2 == 0 else list(reversed(entrants))
            for number, contender in enumerate(order):
                name = f"{field}_{round_}_{number}"
                sample = Sample(dsn or "", name, str(Path(directory) / f"{name}.db"))
                with _fresh(contender, dsn, name):
                    seconds = anyio.run(getattr(contender, field), sample, n, batch)
                samples[contender.name].append(n / seconds)
    rows = [Row(c, Spread.of(samples[c.name]), tuple(samples[c.name])) for c in entrants]
    _print_rows(title, rows, n=n, batch=batch, rounds=rounds, took=time.perf_counter() - began)
    return rows


@contextlib.contextmanager
def _fresh(contender: Contender, dsn: str | None, name: str) -> Generator[None, None, None]:
    if contender.postgres:
        assert dsn is not None
        with schema(dsn, name):
            yield
    else:
        yield  # a new file in the run's directory


def best_peer(rows: Sequence[Row]) -> Row | None:
    """The peer (not anyjob) with the highest median rate, if any ran."""
    peers = [row for row in rows if not row.contender.is_anyjob]
    return max(peers, key=lambda row: row.rate.median, default=None)


def ratio(row: Row, against: Row) -> Spread:
    """*row*'s rate over *against*'s, round by round."""
    return Spread.of([a / b for a, b in zip(row.samples, against.samples, strict=True)])


def _print_rows(
    title: str, rows: Sequence[Row], *, n: int, batch: int | None, rounds: int, took: float
) -> None:
    size = f"n={n:,}" + ("" if batch is None else f" in batches of {batch}")
    print(
        f"\n{title}\n  ({size}, {rounds} round(s) interleaved, wall time; "
        f"median (min-max) over rounds; took {took:.0f} s)"
    )
    best = best_peer(rows)
    width = max(len(row.contender.name) for row in rows)
    version_width = max(len(row.contender.version) for row in rows)
    for row in rows:
        contender = row.contender
        config = "-" if not contender.is_anyjob else ("tuned" if "tuned" in contender.config else "default")
        rate = row.rate.format(0, " jobs/s")
        line = f"  {contender.name:<{width}}  {contender.version:<{version_width}} [{config:<8}]  {rate:<30}"
        if row is best:
            line += "best peer"
        elif best is not None and (contender.postgres or contender.is_anyjob):
            line += f"vs {best.contender.name}: {ratio(row, best).format(2, 'x')}"
        if batch is not None and contender.batch is not None and contender.batch.startswith("none"):
            line += "  (no batch path)"
        print(line.rstrip())


def _header(dsn: str | None, entrants: Sequence[Contender]) -> None:
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in ("anyjob", "anyio", "psycopg"))
    server = "unreachable"
    if dsn is not None:
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            server = f"PostgreSQL {row[0] if row else '?'} (database {database_name(dsn)}, made for this run)"
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"anyjob against its peers, {time.strftime('%Y-%m-%d %H:%M')}, Python {platform.python_version()}, "
        f"{versions}, {os.cpu_count()} CPUs, load average {load}\n{server}"
    )
    for contender in entrants:
        print(f"  {contender.name} {contender.version}: {contender.config}")


def _batch_paths(entrants: Sequence[Contender]) -> None:
    print("\nBatch paths (the batched rows above):")
    for contender in entrants:
        if contender.is_anyjob and contender is not entrants[0] and contender.batch == entrants[0].batch:
            continue
        who = "anyjob" if contender.is_anyjob else contender.name
        print(f"  {who}: {contender.batch}")


def _row(rows: Sequence[Row], name: str) -> Row | None:
    return next((row for row in rows if row.contender.name == name), None)


def _versus(label: str, rows: Sequence[Row], *, note: str = "", missing: str | None = None) -> Goal:
    anyjob_row, best = _row(rows, "anyjob PostgresStore"), best_peer(rows)
    if anyjob_row is None or best is None:
        return Goal(label, None, PEER_FACTOR, at_least=True, unit="x", note=f"no PostgreSQL: {missing}")
    best_note = f"best peer {best.contender.name} {best.rate.median:,.0f} jobs/s"
    return Goal(
        label,
        ratio(anyjob_row, best),
        PEER_FACTOR,
        at_least=True,
        unit="x",
        note=f"{best_note}; {note}" if note else best_note,
    )


def main(*, quick: bool = False) -> int:
    """Run every measure once (tiny sizes with *quick*) and print the tables and the targets."""
    sizes = QUICK if quick else FULL
    store_sizes = QUICK_SIZES if quick else FULL_SIZES
    rounds = sizes["rounds"]
    # saq's stop() warns of the tasks it cancels, psycopg of the queries a stopping worker cancels.
    for logger in ("saq", "psycopg"):
        logging.getLogger(logger).setLevel(logging.ERROR)
    began = time.perf_counter()
    why = unreachable()
    with contextlib.ExitStack() as stack:
        stack.enter_context(_exit_on_sigterm())  # `timeout` and CI stop it so: the database is dropped
        dsn = None if why is not None else stack.enter_context(database())
        entrants = contenders(postgres=dsn is not None)
        _header(dsn, entrants)
        if why is not None:
            print(f"  PostgreSQL unreachable ({why}): only SQLiteStore runs")
        if not quick:
            _warm_up(entrants, dsn)
        life = run_measure(
            "Lifecycles, one by one: submitted, run by one worker, recorded finished",
            "lifecycles",
            entrants,
            dsn,
            n=sizes["lifecycles"],
            batch=None,
            rounds=rounds,
        )
        life_batched = run_measure(
            "Lifecycles, batched submits: submitted, run by one worker, recorded finished",
            "lifecycles",
            entrants,
            dsn,
            n=sizes["lifecycles"],
            batch=sizes["batch"],
            rounds=rounds,
        )
        submits = run_measure(
            "Submits, one by one (nothing runs them)",
            "submits",
            entrants,
            dsn,
            n=sizes["submits"],
            batch=None,
            rounds=rounds,
        )
        submits_batched = run_measure(
            "Submits, batched (nothing runs them)",
            "submits",
            entrants,
            dsn,
            n=sizes["batched"],
            batch=sizes["batch"],
            rounds=rounds,
        )
        _batch_paths(entrants)
        grown = [c for c in entrants if c.is_anyjob and "tuned" not in c.config]
        by_size = measure(
            grown, dsn, sizes=store_sizes, seed=sizes["seed"], m=sizes["sizes_m"], rounds=sizes["size_rounds"]
        )
        print_table(
            by_size, sizes=store_sizes, seed=sizes["seed"], m=sizes["sizes_m"], rounds=sizes["size_rounds"]
        )
    batch_note = (
        "anyjob has no batch submit: its concurrent submits" if anyjob_batch_path().startswith("none") else ""
    )
    sqlite = _row(life, "anyjob SQLiteStore")
    goals = [
        Goal(
            "SQLiteStore lifecycles",
            None if sqlite is None else sqlite.rate,
            SQLITE_LIFECYCLES,
            at_least=True,
            unit="/s",
        ),
        _versus("PostgresStore lifecycles, one by one, vs the best peer", life, missing=why),
        _versus(
            "PostgresStore lifecycles, batched, vs the best peer batched",
            life_batched,
            note=batch_note,
            missing=why,
        ),
        _versus("PostgresStore submits, one by one, vs the best peer", submits, missing=why),
        _versus(
            "PostgresStore submits, batched, vs the best peer batched",
            submits_batched,
            note=batch_note,
            missing=why,
        ),
    ]
    big, small = _size_label(store_sizes[-1]), _size_label(store_sizes[0])
    for result in by_size:
        label = f"{result.name} cost per job, {big} / {small} in store"
        goals.append(Goal(label, result.growth, FLAT, at_least=False, unit="x"))
    print("\nTargets of issue 10 (speed), default configuration, one run; median (min-max) over rounds:")
    for goal in goals:
        print(f"  {goal.line()}")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"\nThis run took {time.perf_counter() - began:.0f} s wall; load average at the end {load}")
    if quick:
        print("\n(--quick: tiny sizes, the figures above mean nothing)")
    return 0


@contextlib.contextmanager
def _exit_on_sigterm() -> Generator[None, None, None]:
    """SIGTERM raises SystemExit meanwhile, so the run's ``finally`` blocks (dropping its database) run."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _size_label(size: int) -> str:
    return f"{size // 1000}k" if size >= 1000 and size % 1000 == 0 else str(size)


def _warm_up(entrants: Sequence[Contender], dsn: str | None) -> None:
    """One tiny lifecycle and submit run per contender, not counted (imports, first connections)."""
    with tempfile.TemporaryDirectory(prefix="anyjob-bench-warm-") as directory:
        for number, contender in enumerate(entrants):
            for field in ("lifecycles", "submits"):
                name = f"warm_{number}_{field}"
                sample = Sample(dsn or "", name, str(Path(directory) / f"{name}.db"))
                with _fresh(contender, dsn, name):
                    anyio.run(getattr(contender, field), sample, 5, None)
