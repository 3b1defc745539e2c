"""For information: the default hook once the application configures structlog.

What many applications do: structlog filtering below WARNING, with
``cache_logger_on_first_use=True``. Configuring structlog cannot be undone completely
in a process (loggers cache what they assembled), so these rows run only in a
subprocess of their own (:func:`in_subprocess`), after the headline rows: the process
that prints the default-configuration figures never configures structlog.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import structlog

from benchmarks import bench_job, bench_manager

ROOT = Path(__file__).resolve().parent.parent


def configure_like_an_application() -> None:
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=True,
    )


def main(n: int = 100_000, rounds: int = 5) -> None:
    """Configure structlog, then run the manager and Job.run comparisons in that configuration."""
    configure_like_an_application()
    bench_manager.compare_left(n, rounds, "tuned", references=False)
    bench_manager.compare_wait_each(n, rounds, "tuned", references=False)
    bench_job.compare_run(n, rounds, "tuned")


def in_subprocess(args: list[str]) -> None:
    """Run ``python -m benchmarks tuned *args`` in a new process, its output inline with ours."""
    sys.stdout.flush()
    subprocess.run([sys.executable, "-m", "benchmarks", "tuned", *args], cwd=ROOT, check=True)  # noqa: S603 - our own module
