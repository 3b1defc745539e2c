"""Run every benchmark: ``python -m benchmarks`` (or ``make bench``)."""

from __future__ import annotations

from benchmarks import bench_executor, bench_job


def main() -> None:
    """Run all benchmarks in one process and print their comparisons."""
    bench_job.main()
    bench_executor.main()


if __name__ == "__main__":
    main()
