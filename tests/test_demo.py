import pytest

from anyjob.__main__ import main


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_demo_runs_and_summarises(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--backend", backend]) == 0
    out = capsys.readouterr().out
    assert "Summary:" in out
    assert "failed" in out
    assert "canceled" in out
    assert "retrying in" in out
    assert "TimeoutError" in out
