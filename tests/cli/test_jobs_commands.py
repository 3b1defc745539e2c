"""``anyjob jobs list|show|stats|cancel|retry|delete`` over an SQLite store, as a user types them."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from tests.cli import sample_jobs
from tests.cli.support import cli, cli_json

import anyjob
from anyjob.stores import SQLiteStore


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, dict[str, str]]:
    """A store with a succeeded, a failed and a waiting external job: its URL and their ids."""
    path = tmp_path / "jobs.db"

    async def fill() -> dict[str, str]:
        anyjob.instrumentation.set_hooks([])
        async with anyjob.JobManager(SQLiteStore(path)) as jobs:
            jobs.register(sample_jobs.count)
            jobs.register(sample_jobs.boom)
            ok = await jobs.submit("count", {"n": 2}, name="ok", labels={"team": "a"})
            bad = await jobs.submit("boom", name="bad", labels={"team": "b"})
            await jobs.wait(ok.id)
            await jobs.wait(bad.id)
            export = await jobs.create("export", {"table": "users"}, message="queued")
            return {"ok": ok.id, "bad": bad.id, "export": export.id}

    ids = anyio.run(fill)
    return f"sqlite:///{path}", ids


def test_list_as_json_is_the_http_api_shape_newest_first(capsys, store, backend) -> None:
    url, ids = store
    page = cli_json(capsys, "jobs", "list", "--store", url, "--backend", backend)
    assert [job["id"] for job in page["jobs"]] == [ids["export"], ids["bad"], ids["ok"]]
    assert page["next_offset"] is None
    bad = page["jobs"][1]
    assert (bad["state"], bad["error_type"], bad["error"]) == (
        "failed",
        "RuntimeError",
        "it broke on purpose",
    )


def test_list_filters_and_pages(capsys, store, backend) -> None:
    url, ids = store
    only = cli_json(capsys, "jobs", "list", "--store", url, "--state", "failed", "--backend", backend)
    assert [job["id"] for job in only["jobs"]] == [ids["bad"]]
    both = cli_json(capsys, "jobs", "list", "--store", url, "--state", "failed", "--state", "created")
    assert {job["id"] for job in both["jobs"]} == {ids["bad"], ids["export"]}
    labelled = cli_json(capsys, "jobs", "list", "--store", url, "--label", "team=a")
    assert [job["id"] for job in labelled["jobs"]] == [ids["ok"]]
    named = cli_json(capsys, "jobs", "list", "--store", url, "--name", "export")
    assert [job["id"] for job in named["jobs"]] == [ids["export"]]
    first = cli_json(capsys, "jobs", "list", "--store", url, "--limit", "1")
    assert (len(first["jobs"]), first["next_offset"]) == (1, 1)
    second = cli_json(capsys, "jobs", "list", "--store", url, "--limit", "1", "--offset", "1")
    assert [job["id"] for job in second["jobs"]] == [ids["bad"]]
    later = cli_json(capsys, "jobs", "list", "--store", url, "--created-after", "2999-01-01T00:00:00+00:00")
    assert later["jobs"] == []


def test_list_is_a_table_for_people(capsys, store) -> None:
    url, ids = store
    status, out, _ = cli(capsys, "jobs", "list", "--store", url)
    assert status == 0
    lines = out.splitlines()
    assert lines[1].split()[:3] == ["id", "name", "state"]  # SIMPLE_HEAD: a blank first line
    row = next(line for line in lines if ids["bad"] in line)
    assert "bad" in row
    assert "failed" in row
    assert "50%" in row


def test_show_gives_every_field_and_the_traceback(capsys, store, backend) -> None:
    url, ids = store
    info = cli_json(capsys, "jobs", "show", ids["bad"], "--store", url, "--backend", backend)
    assert info["id"] == ids["bad"]
    assert "RuntimeError: it broke on purpose" in info["traceback"]
    status, out, _ = cli(capsys, "jobs", "show", ids["bad"], "--store", url)
    assert status == 0
    assert "RuntimeError: it broke on purpose" in out
    assert "Traceback (most recent call last)" in out
    assert "team=b" in out


def test_stats(capsys, store, backend) -> None:
    url, _ = store
    stats = cli_json(capsys, "jobs", "stats", "--store", url, "--backend", backend)
    assert stats["total"] == 3
    assert stats["by_state"] == {
        "created": 1,
        "running": 0,
        "canceling": 0,
        "succeeded": 1,
        "failed": 1,
        "canceled": 0,
    }
    assert stats["by_name"] == {"ok": 1, "bad": 1, "export": 1}
    team = cli_json(capsys, "jobs", "stats", "--store", url, "--label", "team:a")
    assert team["total"] == 1
    status, out, _ = cli(capsys, "jobs", "stats", "--store", url)
    assert status == 0
    assert "3 jobs, 1 active; success rate 50%" in out


def test_cancel_a_waiting_job_then_again(capsys, store, backend) -> None:
    url, ids = store
    status, out, err = cli(capsys, "jobs", "cancel", ids["export"], "--store", url, "--backend", backend)
    assert (status, err) == (0, "")
    assert f"job {ids['export']} is canceled" in out
    status, _, err = cli(capsys, "jobs", "cancel", ids["export"], "--store", url)
    assert status == 1
    assert "not canceled: it is canceled already" in err
    info = cli_json(capsys, "jobs", "show", ids["export"], "--store", url)
    assert info["state"] == "canceled"


def test_retry_an_external_job_puts_it_back_for_its_reporter(capsys, store, backend) -> None:
    url, ids = store
    assert cli(capsys, "jobs", "cancel", ids["export"], "--store", url)[0] == 0
    before = cli_json(capsys, "jobs", "show", ids["export"], "--store", url)
    retried = cli_json(capsys, "jobs", "retry", ids["export"], "--store", url, "--backend", backend)
    assert (retried["id"], retried["state"]) == (ids["export"], "created")
    assert retried["attempts"] == before["attempts"] + 1


def test_retry_of_a_function_job_needs_its_function(capsys, store) -> None:
    url, ids = store
    status, out, err = cli(capsys, "jobs", "retry", ids["bad"], "--store", url)
    assert status == 1
    assert out == ""
    assert "'boom' is not known" in err
    assert "--register MODULE:FUNCTION" in err
    assert "Traceback" not in err
    # Nothing changed: it is still failed after one attempt.
    info = cli_json(capsys, "jobs", "show", ids["bad"], "--store", url)
    assert (info["state"], info["attempts"]) == ("failed", 1)


def test_retry_with_the_function_registered_runs_it_here(capsys, store, backend) -> None:
    url, ids = store
    target = "tests.cli.sample_jobs:boom"
    status, out, err = cli(
        capsys,
        "jobs",
        "retry",
        ids["bad"],
        "--store",
        url,
        "--register",
        target,
        "--json",
        "--backend",
        backend,
    )
    assert status == 1, err  # it failed again, as boom does
    info = json.loads(out)
    assert (info["state"], info["attempts"]) == ("failed", 2)
    assert "✗ bad failed" in err  # its progress was shown on stderr


def test_delete_a_finished_job_then_it_is_not_found(capsys, store, backend) -> None:
    url, ids = store
    assert cli_json(capsys, "jobs", "delete", ids["ok"], "--store", url, "--backend", backend) == {
        "deleted": ids["ok"]
    }
    status, out, err = cli(capsys, "jobs", "show", ids["ok"], "--store", url)
    assert (status, out) == (1, "")
    assert err == f"anyjob: error: no job with id {ids['ok']!r}\n"


def test_delete_of_a_waiting_job_is_refused(capsys, store) -> None:
    url, ids = store
    status, _, err = cli(capsys, "jobs", "delete", ids["export"], "--store", url)
    assert status == 1
    assert "not done (cancel it first)" in err


@pytest.mark.parametrize("action", ["show", "cancel", "retry", "delete"])
def test_an_unknown_id_is_a_one_line_error(capsys, store, action) -> None:
    url, _ = store
    status, out, err = cli(capsys, "jobs", action, "no-such-job", "--store", url)
    assert (status, out) == (1, "")
    assert err == "anyjob: error: no job with id 'no-such-job'\n"


def test_the_store_url_may_come_from_the_environment(capsys, store, monkeypatch) -> None:
    url, ids = store
    monkeypatch.setenv("ANYJOB_STORE", url)
    page = cli_json(capsys, "jobs", "list")
    assert len(page["jobs"]) == len(ids)


def test_a_bad_filter_is_a_usage_error(capsys, store) -> None:
    url, _ = store
    status, _, err = cli(capsys, "jobs", "list", "--store", url, "--state", "sleeping")
    assert status == 1
    assert "invalid choice: 'sleeping'" in err
    status, _, err = cli(capsys, "jobs", "list", "--store", url, "--limit", "5000")
    assert status == 1
    assert err == "anyjob: error: limit must be between 1 and 1000, got 5000\n"
    status, _, err = cli(capsys, "jobs", "list", "--store", url, "--label", "novalue")
    assert (status, err) == (1, "anyjob: error: a label is KEY=VALUE, got 'novalue'\n")
    status, _, err = cli(capsys, "jobs", "list", "--store", url, "--created-after", "yesterday")
    assert status == 1
    assert "--created-after is an ISO 8601 time" in err
