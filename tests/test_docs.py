"""The documentation works as written: the site builds, every code block runs, every example runs.

* ``mkdocs build --strict`` passes (every page in the nav, every link and anchor resolves, every
  documented name found), and the state diagram on the site is the transition table.
* Every ```` ```python ```` block of every ``docs/**/*.md`` page and of the README runs as pasted
  (``python -c``, in an empty directory), unless the line right above it is ``<!-- fragment -->``:
  a fragment is only compiled (top-level ``await`` allowed; it may use names defined elsewhere).
  A program followed by the line ``<!-- output -->`` and a ```` ```text ```` block must print
  exactly that text. The site's build, mypy, the examples and the blocks run in a few threads at
  once; each test waits for its own.
* Every ``anyjob.x.y`` the pages name exists; docs/architecture.md describes every part of the
  manager.
* Every ``docs/examples/*.py`` runs as ``python docs/examples/NAME.py`` and passes ``mypy --strict``.
"""

from __future__ import annotations

import ast
import concurrent.futures
import importlib
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import anyio
import attrs
import pytest

from anyjob import JobManager, State
from anyjob._state import JOB_TRANSITIONS, RECORD_ONLY_TRANSITIONS
from anyjob.stores import SQLiteStore

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
EXAMPLES_DIR = DOCS / "examples"
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
#: The modules the reference documents, and their pages under docs/reference/.
REFERENCE = {
    "anyjob": "anyjob",
    "anyjob.stores": "stores",
    "anyjob.instrumentation": "instrumentation",
    "anyjob.instrumentation.otel": "instrumentation",
    "anyjob.instrumentation.prometheus": "instrumentation",
    "anyjob.testing": "testing",
    "anyjob.web": "web",
    "anyjob.progress": "progress",
}
FRAGMENT = "<!-- fragment -->"
OUTPUT = "<!-- output -->"
#: A fenced python block: the fence at the start of a line, its body, the closing fence.
_BLOCK = re.compile(r"^```python\n(.*?)^```\s*$", re.DOTALL | re.MULTILINE)
#: What a block prints, shown right after it: ``<!-- output -->`` and a ```text block.
_OUTPUT = re.compile(r"\s*^<!-- output -->\n```text\n(.*?)^```\s*$", re.DOTALL | re.MULTILINE)
BLOCK_TIMEOUT = 60  # seconds, per block: a block that hangs fails instead of stalling the suite
_ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONDONTWRITEBYTECODE": "1"}


@attrs.frozen
class Block:
    """One ```python block: where it is, its code, whether it is marked a fragment, and the
    output it must print when the page shows it (a ```text block right after the line
    ``<!-- output -->`` that follows the block)."""

    path: Path
    line: int
    code: str
    fragment: bool
    output: str | None = None

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _blocks_of(path: Path) -> list[Block]:
    text = path.read_text()
    found: list[Block] = []
    for match in _BLOCK.finditer(text):
        lines_before = text[: match.start()].splitlines()
        above = lines_before[-1].strip() if lines_before else ""
        shown = _OUTPUT.match(text, match.end())
        output = shown.group(1) if shown else None
        found.append(Block(path, len(lines_before) + 1, match.group(1), above == FRAGMENT, output))
    return found


PAGES = sorted(DOCS.rglob("*.md"))
BLOCKS = [block for page in [README, *PAGES] for block in _blocks_of(page)]
PROGRAMS = [block for block in BLOCKS if not block.fragment]
FRAGMENTS = [block for block in BLOCKS if block.fragment]


@attrs.frozen
class Ran:
    """How one command ended, and what it left in its (fresh, empty) working directory."""

    result: subprocess.CompletedProcess[str]
    left: list[str]


def _run(*args: str, cwd: Path, timeout: float) -> Ran:
    result = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=_ENV,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    return Ran(result, sorted(path.name for path in cwd.iterdir()))


def _run_in_empty_dir(*args: str, timeout: float = BLOCK_TIMEOUT) -> Ran:
    with tempfile.TemporaryDirectory(prefix="anyjob-docs-") as cwd:
        return _run(*args, cwd=Path(cwd), timeout=timeout)


@attrs.frozen
class Background:
    """What runs in the background for this module's tests: each by its key, and the site's path."""

    runs: dict[str, concurrent.futures.Future[Ran]]
    site: Path


@pytest.fixture(scope="module")
def background() -> Iterator[Background]:
    """The site's build, mypy, every example and every program block, started at once.

    Most of their time is waiting (sleeps, a worker process, the interpreter starting), so a few
    at a time, in threads, finish much sooner than one after another; each test waits for its own.
    """
    with (
        tempfile.TemporaryDirectory(prefix="anyjob-site-") as site,
        concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="docs-run") as pool,
    ):
        # In the order the tests ask for them, so that each waits about as long as it runs.
        runs: dict[str, concurrent.futures.Future[Ran]] = {}
        for block in PROGRAMS:
            runs[block.id] = pool.submit(_run_in_empty_dir, "-c", block.code)
        # Not -q: mkdocs counts the warnings --strict fails on only when they are logged.
        build = ("-m", "mkdocs", "build", "--strict", "-d", site)
        runs["mkdocs"] = pool.submit(_run, *build, cwd=ROOT, timeout=170)
        for example in EXAMPLES:
            runs[example.name] = pool.submit(_run_in_empty_dir, str(example), timeout=120)
        checked = [str(p.relative_to(ROOT)) for p in sorted(EXAMPLES_DIR.glob("*.py"))]
        mypy = ("-m", "mypy", "--strict", *checked, "docs/_hooks.py")  # one call for all
        runs["mypy"] = pool.submit(_run, *mypy, cwd=ROOT, timeout=230)
        try:
            yield Background(runs, Path(site))
        finally:
            for run in runs.values():
                run.cancel()  # those not started yet (a -k selection); the running ones finish


def _does_something(code: str) -> bool:
    """Whether the module's top level calls anything (a program that only defines is no test)."""
    tree = ast.parse(code)
    top = [node for node in tree.body if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
    return any(
        isinstance(node, ast.Call | ast.Await | ast.With | ast.AsyncWith)
        for statement in top
        if not isinstance(statement, ast.ClassDef)
        for node in ast.walk(statement)
    )


def test_the_docs_have_blocks_of_both_kinds() -> None:
    assert len(PROGRAMS) >= 10, [block.id for block in PROGRAMS]
    assert FRAGMENTS, "fragments are marked, not left to fail"


@pytest.mark.timeout(BLOCK_TIMEOUT * 3)  # its own run, and the queue before it on a busy machine
@pytest.mark.parametrize("block", PROGRAMS, ids=[block.id for block in PROGRAMS])
def test_block_runs_as_pasted(block: Block, background: Background) -> None:
    assert _does_something(block.code), (
        f"{block.id} only defines things: call them (anyio.run(main)), or mark it {FRAGMENT}"
    )
    result = background.runs[block.id].result(timeout=BLOCK_TIMEOUT * 3 - 5).result
    assert result.returncode == 0, f"{block.id} fails as pasted:\n{result.stderr}"
    if block.output is not None:
        assert result.stdout == block.output, f"{block.id} prints something else than its page shows"


@pytest.mark.parametrize("block", FRAGMENTS, ids=[block.id for block in FRAGMENTS])
def test_fragment_compiles(block: Block) -> None:
    compile(block.code, block.id, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    assert "anyio.run(" not in block.code, f"{block.id} is a whole program: let it run, unmarked"


def test_a_marker_is_always_where_it_marks_something() -> None:
    """A ``<!-- fragment -->`` right above a python block; an ``<!-- output -->`` between a python
    block and a text block (anything else is a marker that marks nothing: a mistake)."""
    outputs = 0
    for page in [README, *PAGES]:
        lines = page.read_text().splitlines()
        for number, line in enumerate(lines[:-1], start=1):
            if line.strip() == FRAGMENT:
                assert lines[number] == "```python", f"{page.relative_to(ROOT)}:{number} marks no block"
            if line.strip() == OUTPUT:
                assert lines[number] == "```text", f"{page.relative_to(ROOT)}:{number} shows no output"
                outputs += 1
    assert outputs == sum(block.output is not None for block in PROGRAMS), "an output follows no program"


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for part in parts[split:]:
            if not hasattr(found, part):
                return False
            found = getattr(found, part)
        return True
    return False


def test_every_python_name_the_docs_mention_exists() -> None:
    """``anyjob.X.Y`` in prose names a module or attribute that is there (hook event names such as
    ``anyjob.job_failed``, page names such as ``anyjob.md`` are not Python names: left alone)."""
    import anyjob

    python_roots = set(dir(anyjob)) | {m.name for m in (ROOT / "src" / "anyjob").iterdir()}
    missing = []
    for page in [README, *PAGES]:
        for dotted in set(re.findall(r"(?<![\w.])(anyjob(?:\.\w+)+)", page.read_text())):
            root = dotted.split(".")[1]
            if (root in python_roots or f"{root}.py" in python_roots) and not _resolves(dotted):
                missing.append(f"{page.relative_to(ROOT)}: {dotted}")
    assert not missing, missing


# -- the README ---------------------------------------------------------------------------------


def test_readme_opens_with_the_two_commands() -> None:
    readme = README.read_text().splitlines()
    first_block = readme[readme.index("```bash") + 1 : readme.index("```", readme.index("```bash") + 1)]
    commands = [line.split("#")[0].strip() for line in first_block]
    assert commands == ["make demo", "make test"]
    assert "```" not in "\n".join(readme[: readme.index("```bash")]), "the two commands come first"


def test_readme_quick_start_shows_a_succeeded_job(background: Background) -> None:
    quick_start = _blocks_of(README)[0]
    result = background.runs[quick_start.id].result(timeout=50).result
    assert result.returncode == 0, result.stderr
    assert "State.SUCCEEDED" in result.stdout


def test_readme_installation_names_every_extra() -> None:
    readme = README.read_text()
    section = readme.split("## Installation", 1)[1].split("\n## ", 1)[0]
    assert "pip install anyjob" in section
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra in set(extras) - {"docs", "bench", "dev"}:  # what users install; the rest is ours
        assert f"anyjob[{extra}]" in section, extra


# -- the site -----------------------------------------------------------------------------------


def _docs_hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("anyjob_docs_hooks", DOCS / "_hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _allowed() -> set[tuple[State, State]]:
    tables = (JOB_TRANSITIONS, RECORD_ONLY_TRANSITIONS)
    return {(old, new) for table in tables for old in table for new in table[old]}


def test_state_diagram_is_the_transition_table() -> None:
    diagram = _docs_hooks().mermaid()
    edges = set(re.findall(r"^    (\w+) --> (\w+)", diagram, re.MULTILINE))
    assert edges == {(old.value, new.value) for old, new in _allowed()}
    assert "[*] --> created" in diagram


@pytest.mark.timeout(180)
def test_site_builds_strict(background: Background) -> None:
    result = background.runs["mkdocs"].result(timeout=175).result
    warnings = [line for line in result.stderr.splitlines() if not line.startswith("INFO")]
    assert result.returncode == 0, "\n".join(warnings)
    site = background.site
    states_page = (site / "reference" / "states" / "index.html").read_text()
    drawn = set(re.findall(r"^    (\w+) --&gt; (\w+)", states_page, re.MULTILINE))
    assert drawn == {(old.value, new.value) for old, new in _allowed()}
    for module, page in REFERENCE.items():  # every public name is on its module's page
        html = (site / "reference" / page / "index.html").read_text()
        assert not re.search(r":(class|func|meth|attr|mod|data):<code>", html), "a Sphinx role left as text"
        documented = set(re.findall(r'id="([\w.]+)"', html))
        names = {f"{module}.{name}" for name in importlib.import_module(module).__all__}
        assert names <= documented, (module, sorted(names - documented))
    manager = {name for name in dir(JobManager) if not name.startswith("_")}
    html = (site / "reference" / "anyjob" / "index.html").read_text()
    assert {f"anyjob.JobManager.{name}" for name in manager} <= set(re.findall(r'id="([\w.]+)"', html))


def test_architecture_names_every_part_of_the_manager() -> None:
    page = (DOCS / "architecture.md").read_text()
    parts = sorted((ROOT / "src" / "anyjob" / "_manager").glob("_*.py"))
    assert parts
    missing = [part.name for part in parts if part.name != "__init__.py" and f"`{part.name}`" not in page]
    assert not missing, f"docs/architecture.md does not describe {missing}"


# -- the examples -------------------------------------------------------------------------------


@pytest.mark.timeout(180)
@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(example: Path, background: Background) -> None:
    # As its docstring says to run it (``python docs/examples/NAME.py``), from another
    # directory: an example may find its sibling files, not depend on the working directory.
    ran = background.runs[example.name].result(timeout=170)
    assert ran.result.returncode == 0, ran.result.stderr
    assert ran.result.stdout.strip()
    for expected in SHOWS.get(example.stem, []):
        assert expected in ran.result.stdout, (expected, ran.result.stdout)
    assert not ran.left, "an example leaves nothing behind in the working directory"


def test_every_example_is_run_or_named_a_part() -> None:
    assert set(PARTS) <= {p.name for p in EXAMPLES_DIR.glob("*.py")}


@pytest.mark.timeout(240)  # a cold mypy cache on a loaded machine
def test_examples_pass_mypy_strict(background: Background) -> None:
    result = background.runs["mypy"].result(timeout=235).result
    assert result.returncode == 0, result.stdout + result.stderr


def test_external_worker_beats_fails_and_stops_on_cancel(tmp_path: Path) -> None:
    """external_worker.py alone: ids on its stdin, reports into the jobs, leaves when stdin ends."""
    worker_file = EXAMPLES_DIR / "external_worker.py"
    db = tmp_path / "jobs.db"

    async def main() -> tuple[int, str, str, dict[str, tuple[State, str | None, object]]]:
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
