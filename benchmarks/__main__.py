"""Run the benchmarks: ``python -m benchmarks [SECTION] [--quick] [--clock cpu|wall]``.

Sections (default ``all``, what ``make bench`` runs):

* ``manager``: the four default-configuration targets of issue 8 (manager left vs
  ``asyncio.TaskGroup``, ``wait(id)`` each vs ``create_task`` + ``await``, ``Job(fn).run()``
  vs ``await asyncio.create_task()``, bytes per finished job), trio and aiojobs for
  information, calls per job, then the silenced rows; a PASS/FAIL summary at the end;
* ``all``: ``manager``, then the Executor, tracked blocks, flat memory with retention, the
  durable stores and (in a subprocess) the rows with structlog configured;
* ``track``: only the tracked blocks (``jobs.track`` vs ``Job(fn).run()``, default then
  silenced, calls per block), with their target's verdict;
* ``tuned``: only the structlog-configured rows (run in a process of their own);
* ``peers``: anyjob's SQLiteStore and PostgresStore against saq, pgqueuer and procrastinate on
  PostgreSQL (issue 10's speed targets; wall time whatever ``--clock`` says; needs the server
  at ``ANYJOB_TEST_POSTGRES`` and the ``bench`` extra; not part of ``all``);
* ``notice``: cross-process notice latency (a job ends in process A, ``wait`` returns in B) and
  an idle manager's CPU, over SQLite and PostgreSQL (issue 10; not part of ``all``);
* ``web``: the HTTP API against a hand-written Starlette route with 100k finished jobs in an
  SQLiteStore, under wrk on loopback (issue 11; needs the ``web`` extra and ``/usr/bin/wrk``;
  not part of ``all``).

``--quick`` runs everything with tiny sizes (the smoke test uses it): the figures then
mean nothing, only that the code runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

import structlog

import anyjob
from benchmarks import (
    bench_calls,
    bench_completion,
    bench_executor,
    bench_job,
    bench_manager,
    bench_memory,
    bench_stores,
    bench_track,
    bench_tuned,
)
from benchmarks._harness import MIN_ROUNDS, Target, clock_name, use_clock

FULL = {
    "n": 100_000,
    "rounds": MIN_ROUNDS,
    "calls": 10_000,
    "bytes": 100_000,
    "executor": 20_000,
    "million": 1_000_000,
    "stores": 1_000,
    "track": 20_000,
}
QUICK = {
    "n": 300,
    "rounds": MIN_ROUNDS,
    "calls": 300,
    "bytes": 300,
    "executor": 100,
    "million": 3_000,
    "stores": 30,
    "track": 300,
}


def _header() -> None:
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("anyjob", "anyio", "trio", "structlog")
    )
    print(
        f"anyjob benchmarks, {time.strftime('%Y-%m-%d %H:%M')}, Python {platform.python_version()}, "
        f"{versions}, {os.cpu_count()} CPUs, {clock_name()} time"
    )
    print(f"anyjob imported from {Path(anyjob.__file__).parent}")


def manager_section(sizes: dict[str, int]) -> list[Target]:
    """The issue's four targets in the default configuration, then the silenced rows."""
    n, rounds = sizes["n"], sizes["rounds"]
    targets = bench_manager.headline(n, rounds)
    targets.append(bench_job.headline(n, rounds))
    targets.append(bench_memory.bytes_per_finished_job(sizes["bytes"]))
    targets.append(bench_completion.headline(n, rounds))
    bench_calls.main(sizes["calls"])
    bench_manager.silenced(n, rounds)
    bench_job.silenced(n, rounds)
    return targets


def summary(title: str, targets: list[Target]) -> None:
    print(f"\n{title}")
    for target in targets:
        print(f"  {target.line()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    sections = ["all", "manager", "track", "tuned", "peers", "notice", "web"]
    parser.add_argument("section", nargs="?", default="all", choices=sections)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the code runs, nothing more")
    parser.add_argument("--clock", default="cpu", choices=["cpu", "wall"], help="what to time (default: cpu)")
    args = parser.parse_args(argv)
    use_clock(args.clock)
    sizes = QUICK if args.quick else FULL
    if args.section == "tuned":
        bench_tuned.main(sizes["n"], sizes["rounds"])
        return 0
    if args.section == "notice":
        from benchmarks import bench_notice  # imported here: only this section starts processes

        return bench_notice.main(quick=args.quick)
    if args.section == "web":
        from benchmarks import bench_web  # imported here: it needs the web extra

        targets = bench_web.main(["--quick"] if args.quick else [])
        return 0 if all(target.passed for target in targets) else 1
    if args.section == "peers":
        from benchmarks import bench_peers  # imported here: it needs the bench extra

        return bench_peers.main(quick=args.quick)
    if structlog.is_configured():  # pragma: no cover - a guard, the harness checks too
        raise RuntimeError("the headline figures need structlog unconfigured in this process")
    _header()
    began, began_cpu = time.perf_counter(), time.process_time()
    if args.section == "track":
        summary(
            "Target of tracked blocks, default configuration:",
            [bench_track.main(sizes["track"], sizes["rounds"], sizes["calls"])],
        )
        _footer(began, began_cpu, quick=args.quick, subprocess=False)
        return 0
    targets = manager_section(sizes)
    executor: list[Target] = []
    track: list[Target] = []
    if args.section == "all":
        executor = bench_executor.main(sizes["executor"], sizes["rounds"])
        track = [bench_track.main(sizes["track"], sizes["rounds"], sizes["calls"])]
        bench_memory.flat_memory(sizes["million"], max(sizes["million"] // 10, 1))
        bench_stores.main(sizes["stores"])
        bench_tuned.in_subprocess([*(["--quick"] if args.quick else []), "--clock", args.clock])
    summary(
        "Targets of issue 8, default configuration (hooks as shipped, structlog unconfigured), "
        "one run; median (min-max) over rounds:",
        targets,
    )
    if executor:
        summary("Target of issue 3 (Executor), default configuration:", executor)
    if track:
        summary("Target of tracked blocks, default configuration:", track)
    _footer(began, began_cpu, quick=args.quick, subprocess=args.section == "all")
    return 0


def _footer(began: float, began_cpu: float, *, quick: bool, subprocess: bool) -> None:
    print(
        f"\nThis run took {time.perf_counter() - began:.0f} s wall, {time.process_time() - began_cpu:.0f} s "
        "CPU in this process" + (" (the structlog-configured subprocess not counted)" if subprocess else "")
    )
    if quick:
        print("\n(--quick: tiny sizes, the figures above mean nothing)")


if __name__ == "__main__":
    sys.exit(main())
