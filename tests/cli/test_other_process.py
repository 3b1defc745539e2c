"""The command line over a store another process is using: it looks without touching."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cli.support import ROOT, cli, cli_json, env


class Worker:
    """``tests/cli/worker.py`` in its own process: one ``hold`` job running, two waiting behind it."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "cli" / "worker.py"), str(db)],
            cwd=ROOT,
            env=env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline().split()
        assert ready, "the worker printed nothing"
        assert ready[0] == "ready", ready
        self.ids = ready[1:]

    def finish(self) -> dict[str, str]:
        """Let the hold job end; every job's final state, by id."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        final = self.proc.stdout.readline().split()
        assert final, "the worker printed nothing"
        assert final[0] == "final", final
        assert self.proc.wait(timeout=30) == 0
        return dict(item.split("=") for item in final[1:])

    def rows(self) -> list[tuple[object, ...]]:
        """The store's job rows as they are on disk (read without any manager)."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT * FROM anyjob_jobs ORDER BY id").fetchall()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Worker]:
    made = Worker(tmp_path / "jobs.db")
    yield made
    made.kill()


def test_inspecting_commands_change_nothing_of_another_process_jobs(capsys, worker: Worker) -> None:
    url = f"sqlite:///{worker.db}"
    before = worker.rows()
    page = cli_json(capsys, "jobs", "list", "--store", url)
    states = {job["id"]: job["state"] for job in page["jobs"]}
    assert states == dict(zip(worker.ids, ["running", "created", "created"], strict=True))
    assert cli(capsys, "jobs", "list", "--store", url)[0] == 0
    assert cli(capsys, "jobs", "stats", "--store", url)[0] == 0
    assert cli(capsys, "jobs", "show", worker.ids[1], "--store", url)[0] == 0
    assert cli(capsys, "jobs", "list", "--store", url, "--backend", "trio")[0] == 0
    assert worker.rows() == before  # not a field of any job changed
    # The waiting jobs were neither taken nor canceled: the worker runs them all.
    assert worker.finish() == dict.fromkeys(worker.ids, "succeeded")


def test_cancel_reaches_a_job_running_in_another_process(capsys, worker: Worker) -> None:
    url = f"sqlite:///{worker.db}"
    status, out, err = cli(capsys, "jobs", "cancel", worker.ids[0], "--store", url)
    assert status == 0, err
    # Said as it stands: usually still running there, canceled if that process was quick.
    assert out in {
        f"job {worker.ids[0]}: cancel requested (it is running)\n",
        f"job {worker.ids[0]} is canceled\n",
    }
    # It ends where it runs, once that process hears of it: watch it until it has.
    status, out, err = cli(capsys, "jobs", "watch", worker.ids[0], "--store", url, "--until-idle", "--json")
    assert status == 0, err
    assert json.loads(out.splitlines()[-1])["state"] == "canceled"
    final = worker.finish()
    assert final == {worker.ids[0]: "canceled", worker.ids[1]: "succeeded", worker.ids[2]: "succeeded"}


def test_watch_follows_another_process_until_idle(worker: Worker) -> None:
    watch = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "anyjob",
            "jobs",
            "watch",
            "--store",
            f"sqlite:///{worker.db}",
            "--until-idle",
            "--json",
        ],
        cwd=ROOT,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watch.stdout is not None
        # First the jobs as they are now (the watcher is following from here on) ...
        now = [json.loads(watch.stdout.readline()) for _ in worker.ids]
        assert [(event["job_id"], event["state"]) for event in now] == list(
            zip(worker.ids, ["running", "created", "created"], strict=True)
        )
        # ... then what the other process does, as it happens, until nothing is left to do.
        assert worker.finish() == dict.fromkeys(worker.ids, "succeeded")
        out, err = watch.communicate(timeout=30)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.communicate()
    assert watch.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    ends = {event["job_id"]: event["state"] for event in events if event["state"] == "succeeded"}
    assert ends == dict.fromkeys(worker.ids, "succeeded")
    assert events[-1]["state"] == "succeeded"
