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


def _verdicts(out: str, title: str) -> list[str]:
    summary = out.split(title, 1)[1]
    return [line.strip() for line in summary.splitlines() if line.strip().startswith(("PASS", "FAIL", "n/a"))]


@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_peers_benchmark_runs() -> None:
    # Every contender, every table, every target's verdict; the peers' versions printed.
    from importlib import metadata

    result = run("-m", "benchmarks", "peers", "--quick")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for peer, package in (
        ("saq PostgresQueue", "saq"),
        ("pgqueuer", "pgqueuer"),
        ("procrastinate", "procrastinate"),
    ):
        assert f"  {peer} {metadata.version(package)}: " in out, peer
        assert re.search(
            rf"  {peer} +{re.escape(metadata.version(package))} +\[-       \]  \d+ jobs/s", out
        ), peer
    for title in ("Lifecycles, one by one", "Lifecycles, batched", "Submits, one by one", "Submits, batched"):
        assert title in out
    assert out.count("anyjob PostgresStore ") >= 4
    assert re.search(r"anyjob PostgresStore +\S+ +\[default \]  \d+ jobs/s \(\d+-\d+\) +vs ", out)
    assert "Batch paths" in out
    assert "Cost per job with jobs already in the store" in out
    verdicts = _verdicts(out, "Targets of issue 10")
    assert len(verdicts) == 7, verdicts
    assert not any(line.startswith("n/a") for line in verdicts), verdicts


@pytest.mark.timeout(300)
def test_peers_benchmark_without_a_server() -> None:
    # No PostgreSQL at that address: the SQLiteStore rows still run, the rest says why not.
    code = (
        "import os, sys; os.environ['ANYJOB_TEST_POSTGRES'] = 'postgresql://postgres@127.0.0.1:1/none'\n"
        "from benchmarks import __main__ as bench\n"
        "sys.exit(bench.main(['peers', '--quick']))\n"
    )
    result = run("-c", code)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "PostgreSQL unreachable" in out
    assert "anyjob SQLiteStore" in out
    assert "saq" not in out
    verdicts = _verdicts(out, "Targets of issue 10")
    assert len(verdicts) == 6, verdicts
    assert verdicts[0].split("  ", 1)[1].startswith("SQLiteStore lifecycles"), verdicts
    assert [line.split(":")[0] for line in verdicts[1:5]] == [
        "n/a   PostgresStore lifecycles, one by one, vs the best peer",
        "n/a   PostgresStore lifecycles, batched, vs the best peer batched",
        "n/a   PostgresStore submits, one by one, vs the best peer",
        "n/a   PostgresStore submits, batched, vs the best peer batched",
    ], verdicts
    assert all("no PostgreSQL" in line for line in verdicts[1:5]), verdicts
    assert verdicts[5].split("  ", 1)[1].startswith("anyjob SQLiteStore cost per job"), verdicts


@pytest.mark.postgres
def test_notice_benchmark_runs() -> None:
    result = run("-m", "benchmarks", "notice", "--quick")
    # 1 when a target is missed: with tiny sizes the figures mean nothing, only that it runs.
    assert result.returncode in {0, 1}, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    out = result.stdout
    for engine in ("sqlite", "postgres"):
        assert re.search(rf"^  {engine} +asyncio .*target < 1 %: (PASS|FAIL)$", out, re.MULTILINE), out
    assert "p99" in out


def test_web_benchmark_runs() -> None:
    result = run("-m", "benchmarks", "web", "--quick")
    assert result.returncode in {0, 1}, result.stderr  # 1: a target missed (tiny sizes: meaningless)
    assert "Traceback" not in result.stderr, result.stderr
    out = result.stdout
    verdicts = re.findall(r"-> (PASS|FAIL)  GET /api/jobs", out)
    assert len(verdicts) == 2, out
    assert "every subscriber had the final state" in out
