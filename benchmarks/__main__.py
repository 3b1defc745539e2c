"""Run every benchmark: ``python -m benchmarks`` (or ``make bench``)."""

from __future__ import annotations

from benchmarks import bench_executor, bench_job, bench_manager


def main() -> None:
    """Run all benchmarks in one process and print their comparisons."""
    bench_job.main()
    bench_executor.main()
    bench_manager.main()


if __name__ == "__main__":
    main()
