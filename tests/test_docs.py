"""The README's quick start and every example in docs/examples run as pasted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.py"))


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False, timeout=120
    )


def test_readme_quick_start_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    assert blocks, "the README has a python quick start"
    result = _run(blocks[0])
    assert result.returncode == 0, result.stderr
    assert "State.SUCCEEDED" in result.stdout


def test_readme_opens_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    first_block = readme[readme.index("```bash") + 1 : readme.index("```", readme.index("```bash") + 1)]
    commands = [line.split("#")[0].strip() for line in first_block]
    assert commands == ["make demo", "make test"]


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(example: Path) -> None:
    result = _run(example.read_text())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
