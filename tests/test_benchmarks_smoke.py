"""The benchmarks must keep running; their figures are printed, never asserted.

They run in a subprocess: they configure structlog the way an application does,
which must not leak into the other tests.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("bench", "args"),
    [
        ("bench_job", "n=40, rounds=1"),
        ("bench_executor", "n=40, rounds=1"),
        ("bench_manager", "n=200, rounds=1, million=2000"),
    ],
)
def test_benchmark_runs(bench: str, args: str) -> None:
    code = f"from benchmarks import {bench}; {bench}.main({args})"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "ratio" in result.stdout
    assert "target" in result.stdout
