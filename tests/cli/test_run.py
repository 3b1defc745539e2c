"""``anyjob run MODULE:FUNCTION``: one function as a job; its result, its error, its exit status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.cli.support import cli, cli_json, run_cli

import anyjob.testing

COUNT = "tests.cli.sample_jobs:count"


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


def test_prints_the_result_and_shows_progress_on_stderr(capsys, backend) -> None:
    status, out, err = cli(capsys, "run", COUNT, "--params", '{"n": 4}', "--backend", backend)
    assert status == 0, err
    assert json.loads(out) == {"counted": 4}
    # Not a terminal: plain lines, one per tenth of progress, then how it ended.
    lines = err.splitlines()
    assert lines[0] == "count running"
    assert "count  50% step 2/4" in lines
    assert lines[-1].startswith("✓ count succeeded in ")


def test_json_is_the_job_info(capsys, backend) -> None:
    info = cli_json(capsys, "run", COUNT, "--name", "counting", "--label", "team=a", "--backend", backend)
    assert (info["name"], info["state"], info["result"], info["labels"]) == (
        "counting",
        "succeeded",
        {"counted": 3},
        {"team": "a"},
    )
    assert info["progress"] == 1.0


def test_a_failing_job_prints_its_error_and_exits_1(capsys, backend) -> None:
    status, out, err = cli(capsys, "run", "tests.cli.sample_jobs:boom", "--backend", backend)
    assert (status, out) == (1, "")
    assert "Traceback (most recent call last)" in err  # the job's own traceback: where it broke
    assert "raise RuntimeError(msg)" in err
    assert err.splitlines()[-1].startswith("anyjob: job boom (")
    assert err.splitlines()[-1].endswith(") failed: RuntimeError: it broke on purpose")


def test_a_failing_job_in_json(capsys) -> None:
    status, out, _ = cli(capsys, "run", "tests.cli.sample_jobs:boom", "--json")
    assert status == 1
    info = json.loads(out)
    assert (info["state"], info["error_type"], info["error"]) == (
        "failed",
        "RuntimeError",
        "it broke on purpose",
    )


def test_retry_runs_it_again(capsys) -> None:
    anyjob.testing.set_testing()  # no wait between attempts (the autouse fixture switches it off)
    info = cli_json(capsys, "run", "tests.cli.sample_jobs:flaky", "--retry", "2")
    assert (info["state"], info["result"], info["attempts"]) == ("succeeded", "ok", 2)
    status, out, _ = cli(capsys, "run", "tests.cli.sample_jobs:flaky", "--retry", "1", "--json")
    assert status == 1
    assert json.loads(out)["error_type"] == "ConnectionError"


def test_timeout_fails_the_attempt(capsys) -> None:
    status, out, _ = cli(capsys, "run", "tests.cli.sample_jobs:slow", "--timeout", "0.05", "--json")
    assert status == 1
    info = json.loads(out)
    assert info["error_type"] == "TimeoutError"


def test_with_a_store_the_job_is_recorded_there(capsys, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    info = cli_json(capsys, "run", COUNT, "--store", url)
    page = cli_json(capsys, "jobs", "list", "--store", url)
    assert [job["id"] for job in page["jobs"]] == [info["id"]]
    assert page["jobs"][0]["state"] == "succeeded"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("tests.cli.sample_jobs", "expected MODULE:FUNCTION (for example mypackage.tasks:resize)"),
        ("tests.cli.sample_jobs:nope", "'tests.cli.sample_jobs' has no 'nope'"),
        ("tests.cli.no_such_module:fn", "cannot import 'tests.cli.no_such_module'"),
        ("tests.cli.sample_jobs:not_async", "is not an async def function"),
    ],
)
def test_a_bad_target_is_one_line(capsys, target: str, message: str) -> None:
    status, out, err = cli(capsys, "run", target)
    assert (status, out) == (1, "")
    assert err.startswith("anyjob: error: ")
    assert message in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--params", "{nope"], "--params is not valid JSON"),
        (["--params", "[1, {2}]"], "--params is not valid JSON"),
        (["--retry", "0"], "--retry is the number of attempts (1 or more), got 0"),
        (["--timeout", "-1"], "--timeout is seconds per attempt (more than 0), got -1.0"),
        (["--timeout", "soon"], "not a number of seconds: 'soon'"),
        (["--label", "x"], "a label is KEY=VALUE"),
    ],
)
def test_bad_options_are_one_line(capsys, option: list[str], message: str) -> None:
    status, out, err = cli(capsys, "run", COUNT, *option)
    assert (status, out) == (1, "")
    assert message in err


def test_from_the_shell_as_a_module() -> None:
    result = run_cli("run", COUNT, "--params", '{"n": 2}')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"counted": 2}
    assert "✓ count succeeded" in result.stderr
