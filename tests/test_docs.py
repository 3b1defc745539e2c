"""The README's quick start, every example in docs/examples and the guides' snippets run as pasted."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from anyjob import JobManager, State
from anyjob.stores import SQLiteStore

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "docs" / "examples"
#: Examples that are a part of another one, not run by themselves: why, each.
PARTS = {"external_worker.py": "the worker process external_web.py starts (and tested below)"}
EXAMPLES = sorted(p for p in EXAMPLES_DIR.glob("*.py") if p.name not in PARTS)
#: What an example's output must show, beyond being there at all.
SHOWS = {
    "external_web": [
        "succeeded  100%",
        "ValueError: nothing to export",
        "canceled",
        "attempts: 2",
        "JobLostError",
    ],
    "track_block": ["succeeded", "canceled", "ValueError", "retry refused", "timed out: True"],
}
#: Guides whose ```python blocks are checked: each one compiles (a fragment may use top-level
#: ``await`` and names defined elsewhere); a block that calls ``anyio.run(`` is a whole program
#: and runs as pasted.
GUIDES = [ROOT / "docs" / "external.md", ROOT / "docs" / "tracking.md"]


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
def test_example_runs(example: Path, tmp_path: Path) -> None:
    # As its docstring says to run it (``python docs/examples/NAME.py``), from another
    # directory: an example may find its sibling files, not depend on the working directory.
    result = subprocess.run(
        [sys.executable, str(example)], cwd=tmp_path, capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    for expected in SHOWS.get(example.stem, []):
        assert expected in result.stdout, (expected, result.stdout)
    assert not list(tmp_path.iterdir()), "an example leaves nothing behind in the working directory"


def test_every_example_is_run_or_named_a_part() -> None:
    assert set(PARTS) <= {p.name for p in EXAMPLES_DIR.glob("*.py")}


def _python_blocks(guide: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", guide.read_text(), re.DOTALL)


@pytest.mark.parametrize("guide", GUIDES, ids=[p.stem for p in GUIDES])
def test_guide_snippets_compile(guide: Path) -> None:
    blocks = _python_blocks(guide)
    assert blocks, f"{guide.name} has python snippets"
    for block in blocks:
        compile(block, guide.name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)


@pytest.mark.parametrize(
    ("guide", "index"),
    [(g, i) for g in GUIDES for i, block in enumerate(_python_blocks(g)) if "anyio.run(" in block],
    ids=lambda value: value.stem if isinstance(value, Path) else str(value),
)
def test_guide_programs_run_as_pasted(guide: Path, index: int) -> None:
    result = _run(_python_blocks(guide)[index])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_external_worker_beats_fails_and_stops_on_cancel(tmp_path: Path) -> None:
    """external_worker.py alone: ids on its stdin, reports into the jobs, leaves when stdin ends."""
    worker_file = EXAMPLES_DIR / "external_worker.py"
    db = tmp_path / "jobs.db"

    async def main() -> tuple[int, str, str, dict[str, object]]:
        async with JobManager(SQLiteStore(db)) as jobs:
            # 0.6 s of upload with no progress: only the heartbeats keep it from stale_after.
            kept = await jobs.create("export", {"rows": 3, "upload": 0.6}, stale_after=0.45)
            stopped = await jobs.create("export", {"rows": 3, "upload": 60})
            broken = await jobs.create("export", {"rows": 0})
            events = jobs.events(stopped.id)
            async with await anyio.open_process([sys.executable, worker_file, db]) as worker:
                assert worker.stdin is not None
                assert worker.stdout is not None
                assert worker.stderr is not None
                await worker.stdin.send(f"{kept.id}\n{stopped.id}\n{broken.id}\n".encode())
                with anyio.fail_after(30):
                    async for event in events:  # the worker's reports, through the store's feed
                        if event.message == "compressing and uploading":
                            break
                    events.close()
                    assert await jobs.cancel(stopped.id) is True
                    asked = anyio.current_time()
                    ended = {ref.id: await jobs.wait(ref.id, timeout=20) for ref in (kept, stopped, broken)}
                    # Reached through a heartbeat (every 0.2 s), long before the 60 s step would end.
                    assert anyio.current_time() - asked < 5
                    await worker.stdin.aclose()  # the queue ends: the worker leaves
                    code = await worker.wait()
                out = b"".join([chunk async for chunk in worker.stdout]).decode()
                err = b"".join([chunk async for chunk in worker.stderr]).decode()
        states = {
            name: (info.state, info.error_type, info.result)
            for name, ref in (("kept", kept), ("stopped", stopped), ("broken", broken))
            if (info := ended[ref.id]) is not None
        }
        return code, out, err, states

    code, out, err, states = anyio.run(main)
    assert code == 0, err
    assert states["kept"][:2] == (State.SUCCEEDED, None), (states, out)
    assert states["stopped"][0] is State.CANCELED, (states, out)
    assert states["broken"][:2] == (State.FAILED, "ValueError"), (states, out)
    assert "canceled: stopped" in out
