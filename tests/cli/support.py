"""Helpers of the command-line tests: run ``anyjob`` in this process or as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from anyjob.__main__ import main

ROOT = Path(__file__).resolve().parent.parent.parent


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``anyjob ARGV`` in this process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse: --help, usage errors
        status = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return status, out, err


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    status, out, err = cli(capsys, *argv, "--json")
    assert status == 0, err
    return json.loads(out)


def env() -> dict[str, str]:
    """The environment for a subprocess: this checkout importable, no colour codes."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "TERM": "dumb"}


def run_cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m anyjob ARGV`` as a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "anyjob", *argv],
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
