"""The benchmarks must keep running; their figures are printed, never asserted.

They run in a subprocess, with ``--quick`` (tiny sizes): the structlog-configured rows
configure structlog, which must not leak into the other tests (they run in a process
of their own even there).
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=300
    )


@pytest.mark.parametrize("section", ["all", "manager"])
def test_benchmarks_run(section: str) -> None:
    result = run("-m", "benchmarks", section, "--quick")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "ratio" in out
    assert "(min-max)" in out
    assert "calls/op" in out
    assert "[default ]" in out
    assert "[silenced]" in out
    # the four targets of issue 8, each with a verdict, whatever it is
    summary = out.split("Targets of issue 8", 1)[1]
    verdicts = [line for line in summary.splitlines() if line.strip().startswith(("PASS", "FAIL"))]
    assert len(verdicts) >= 4, summary
    assert ("[tuned   ]" in out) == (section == "all")
    assert ("tracked empty blocks vs Job(fn).run()" in out) == (section == "all")


def test_track_benchmark_runs() -> None:
    result = run("-m", "benchmarks", "track", "--quick")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for config in ("default ", "silenced"):
        assert re.search(rf'  async with jobs\.track\("x"\): pass +\[{config}\]', out), (config, out)
    assert "ratio" in out
    assert "(min-max)" in out
    assert "Calls per tracked block" in out
    assert out.count("calls/op") == 4
    summary = out.split("Target of tracked blocks", 1)[1]
    verdicts = [line for line in summary.splitlines() if line.strip().startswith(("PASS", "FAIL"))]
    assert len(verdicts) == 1, summary


def test_default_rows_refuse_a_configured_structlog() -> None:
    # A headline row labelled "default" must never run after structlog.configure().
    code = (
        "import structlog; from benchmarks._harness import configuration\n"
        "structlog.configure()\n"
        "try:\n"
        "    with configuration('default'): pass\n"
        "except RuntimeError as exc: print('refused:', exc)\n"
    )
    result = run("-c", code)
    assert result.returncode == 0, result.stderr
    assert "refused:" in result.stdout


def test_too_few_rounds_are_refused() -> None:
    code = (
        "from benchmarks._harness import compare\n"
        "try:\n"
        "    compare('x', [], n=1, rounds=2)\n"
        "except ValueError as exc: print('refused:', exc)\n"
    )
    result = run("-c", code)
    assert result.returncode == 0, result.stderr
    assert "refused:" in result.stdout
