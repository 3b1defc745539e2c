"""``anyjob serve`` and ``anyjob demo --serve``: uvicorn on loopback, asked over HTTP, stopped by Ctrl-C."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from tests.cli.support import ROOT, cli, env


def start(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "anyjob", *argv],
        cwd=ROOT,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def url_from(stream: IO[str] | None) -> str:
    """The first http:// address the command prints (it reads on until then)."""
    assert stream is not None
    for line in stream:
        found = re.search(r"http://[^\s]+/", line)
        if found:
            return found.group(0)
    pytest.fail("the command ended without printing its address")


def get(url: str) -> tuple[int, Any]:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - our own loopback server
        body = response.read()
        kind = response.headers.get("content-type", "")
        return response.status, json.loads(body) if "json" in kind else body.decode()


def post(url: str, body: object) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 - our own loopback server
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return response.status, json.loads(response.read())


def interrupt(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    return proc.communicate(timeout=30)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_serve_answers_the_http_api_until_ctrl_c(capsys, tmp_path: Path, processes) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    # A job in the store first, recorded by `anyjob run`.
    assert cli(capsys, "run", "tests.cli.sample_jobs:count", "--store", url)[0] == 0
    server = start("serve", "--store", url, "--port", "0", "--register", "tests.cli.sample_jobs:count")
    processes.append(server)
    address = url_from(server.stderr)
    assert address.startswith("http://127.0.0.1:")
    status, page = get(address + "api/jobs")
    assert status == 200
    assert [job["name"] for job in page["jobs"]] == ["count"]
    # A registered function can be submitted over HTTP; the server's process runs it.
    status, ref = post(address + "api/jobs", {"name": "count", "params": {"n": 2}})
    assert status == 201
    assert cli(capsys, "jobs", "watch", ref["id"], "--store", url, "--until-idle", "--json")[0] == 0
    status, info = get(address + f"api/jobs/{ref['id']}")
    assert (status, info["state"], info["result"]) == (200, "succeeded", {"counted": 2})
    status, html = get(address)
    assert status == 200
    assert "<html" in html.lower()
    # A page on another name (a rebound DNS name resolving to 127.0.0.1) is not answered.
    rebound = urllib.request.Request(address + "api/jobs", headers={"host": "evil.example"})  # noqa: S310
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(rebound, timeout=30)  # noqa: S310 - our own loopback server
    assert refused.value.code == 400
    refused.value.close()
    _, err = interrupt(server)
    assert server.returncode == 130, err
    assert "Interrupted: stopping the server" in err
    assert "Traceback" not in err


def test_a_port_in_use_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = start("serve", "--store", f"sqlite:///{tmp_path / 'jobs.db'}", "--port", str(port))
        _, err = server.communicate(timeout=60)
    assert server.returncode == 1
    assert err.startswith(f"anyjob: error: cannot listen on 127.0.0.1:{port}: ")
    assert "Traceback" not in err


def test_serve_needs_a_store(capsys) -> None:
    status, _, err = cli(capsys, "serve")
    assert status == 1
    assert "no store given" in err


def test_demo_serve_opens_the_dashboard_with_the_demo_jobs_running(processes) -> None:
    demo = start("demo", "--serve", "--port", "0", "--pace", "3")
    processes.append(demo)
    address = url_from(demo.stdout)
    assert address.startswith("http://127.0.0.1:")
    status, html = get(address)
    assert status == 200
    assert "<html" in html.lower()
    status, page = get(address + "api/jobs?limit=100")
    assert status == 200
    names = {job["name"] for job in page["jobs"]}
    assert names >= {"download", "thumbnail", "parse", "backup", "flaky", "hang"}
    assert any(job["state"] == "running" for job in page["jobs"])
    out, err = interrupt(demo)
    assert demo.returncode == 130, err
    assert "Summary" in out
    assert "Traceback" not in err
