import pytest

from anyjob.__main__ import main


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_demo_runs_and_summarises(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--backend", backend]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    # Not a terminal here: plain lines as the jobs go, then the summary table.
    assert "download running" in lines
    assert any(
        line.startswith("✗ parse failed in ") and "ValueError: unexpected token" in line for line in lines
    )
    assert any(line.startswith("■ backup canceled in ") for line in lines)
    assert any(line.startswith("✓ flaky succeeded in ") for line in lines)
    assert "retrying in" in out
    summary = out[out.index("Summary") :]
    rows = {line.split()[1]: line for line in summary.splitlines() if line.startswith("│")}
    assert set(rows) == {"backup", "download", "flaky", "hang", "parse", "thumbnail"}
    assert "canceled" in rows["backup"]
    assert "failed" in rows["parse"]
    assert "TimeoutError" in rows["hang"]
    assert " 3 " in rows["flaky"]  # attempts: failed twice, then succeeded
    assert "Statistics: 6 jobs (succeeded 3, failed 2, canceled 1)" in out


def test_demo_options_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--pace", "0"]) == 1
    assert "--pace must be more than 0" in capsys.readouterr().err
    assert main(["demo", "--serve", "--backend", "trio"]) == 1
    assert "demo --serve runs on asyncio" in capsys.readouterr().err
