"""The live display as a person sees it: ``anyjob`` in a real terminal (tmux), Ctrl-C included.

Each test starts its own tmux server (``-L``, a private socket), types a command into a
bash in a 120x40 pane, reads the screen with ``capture-pane -p`` and presses keys with
``send-keys``. Waiting is on what the screen shows (a generous timeout), never on a sleep.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from tests.cli.support import ROOT

TMUX = shutil.which("tmux") or pytest.fail("these tests need tmux (apt-get install tmux)", pytrace=False)


class Pane:
    """One tmux session running bash, 120 columns by 40 lines."""

    def __init__(self) -> None:
        self.server = f"anyjob-test-{uuid.uuid4().hex[:12]}"
        self._tmux("new-session", "-d", "-x", "120", "-y", "40", "-s", "cli", "bash --norc --noprofile")
        self._tmux("set-option", "-t", "cli", "history-limit", "0")

    def _tmux(self, *args: str) -> str:
        result = subprocess.run(
            [TMUX, "-L", self.server, *args], capture_output=True, text=True, check=True, timeout=30
        )
        return result.stdout

    def type(self, command: str) -> None:
        """Type *command* and press Enter."""
        self._tmux("send-keys", "-t", "cli", "-l", command)
        self._tmux("send-keys", "-t", "cli", "Enter")

    def press(self, key: str) -> None:
        self._tmux("send-keys", "-t", "cli", key)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "cli")

    def wait_for(self, seen: Callable[[str], bool], what: str, timeout: float = 45.0) -> str:
        """The screen, once *seen(screen)* holds."""
        deadline = time.monotonic() + timeout
        screen = self.screen()
        while not seen(screen):
            if time.monotonic() > deadline:
                pytest.fail(f"never saw {what}; the screen:\n{screen}")
            time.sleep(0.05)
            screen = self.screen()
        return screen

    def close(self) -> None:
        subprocess.run([TMUX, "-L", self.server, "kill-server"], capture_output=True, check=False, timeout=30)


@pytest.fixture
def pane() -> Iterator[Pane]:
    made = Pane()
    yield made
    made.close()


def anyjob_command(*args: str) -> str:
    """The shell line that runs ``python -m anyjob ARGS`` from the checkout and shows its exit status."""
    python = shlex.quote(sys.executable)
    argv = " ".join(shlex.quote(arg) for arg in args)
    return f"cd {shlex.quote(str(ROOT))} && PYTHONPATH=. {python} -m anyjob {argv}; echo exit=$?"


def bar_rows(screen: str, name: str) -> list[str]:
    """The lines of *screen* that are *name*'s live bar."""
    return [
        line for line in screen.splitlines() if re.match(rf"{name} +[━╸╺ ]+ +\d+% \d:\d\d:\d\d ETA ", line)
    ]


def ended(screen: str) -> bool:
    """Whether the command has ended (the shell printed its status on a line of its own)."""
    return re.search(r"^exit=\d+$", screen, re.MULTILINE) is not None


def percent(row: str) -> int:
    match = re.search(r" (\d+)% ", row)
    assert match is not None, row
    return int(match.group(1))


def test_demo_redraws_its_bars_in_place_and_ctrl_c_cancels_with_a_summary(pane: Pane) -> None:
    pane.type(anyjob_command("demo", "--pace", "5"))
    first = pane.wait_for(
        lambda s: len(bar_rows(s, "download")) == 1 and percent(bar_rows(s, "download")[0]) > 0, "a bar"
    )
    before = percent(bar_rows(first, "download")[0])
    later = pane.wait_for(
        lambda s: bar_rows(s, "download") != [] and percent(bar_rows(s, "download")[0]) > before,
        "the bar move",
    )
    # The same one line changed: redrawn in place, not printed again below.
    assert len(bar_rows(later, "download")) == 1
    assert later.count("running ") == 1  # one footer, the latest
    assert re.search(r"download .* \d+% 0:00:\d\d ETA \d:\d\d:\d\d chunk \d+/12", later)
    assert re.search(r"backup +[━╸╺ ]+ +\d+% .* file \d+", later)

    pane.press("C-c")
    done = pane.wait_for(ended, "the command end")
    assert re.search(r"^exit=130$", done, re.MULTILINE)
    assert "Interrupted: canceling" in done
    assert "Summary" in done
    assert re.search(r"│ download +│ canceled ", done)
    assert re.search(r"│ backup +│ canceled ", done)
    for name in ("flaky", "hang", "parse", "thumbnail"):  # each in the summary, however far it got
        assert re.search(rf"│ {name} +│ (canceled|failed|succeeded) ", done), name
    assert bar_rows(done, "download") == []  # the bars are gone: nothing runs any more


def test_run_shows_one_bar_and_ctrl_c_cancels_the_job(pane: Pane) -> None:
    pane.type(anyjob_command("run", "tests.cli.sample_jobs:slow"))
    first = pane.wait_for(lambda s: len(bar_rows(s, "slow")) == 1 and "tick" in s, "the bar")
    tick = re.search(r"tick (\d+)", bar_rows(first, "slow")[0])
    assert tick is not None
    later = pane.wait_for(
        lambda s: len(bar_rows(s, "slow")) == 1 and f"tick {tick.group(1)}" not in bar_rows(s, "slow")[0],
        "the message change",
    )
    assert len(bar_rows(later, "slow")) == 1
    pane.press("C-c")
    done = pane.wait_for(ended, "the command end")
    assert re.search(r"^exit=130$", done, re.MULTILINE)
    assert re.search(r"■ slow canceled in \d+\.\d\d s", done)
    assert re.search(r"anyjob: job slow \(.+\) was canceled", done)


def test_a_second_ctrl_c_exits_at_once(pane: Pane) -> None:
    pane.type(anyjob_command("run", "tests.cli.sample_jobs:stubborn"))
    pane.wait_for(lambda s: len(bar_rows(s, "stubborn")) == 1 and "ignoring cancellation" in s, "the bar")
    pane.press("C-c")
    pane.wait_for(lambda s: "press Ctrl-C again to exit at once" in s, "the first Ctrl-C answered")
    pane.wait_for(lambda s: re.search(r"stubborn canceling", s) is not None, "the job canceling")
    pane.press("C-c")
    done = pane.wait_for(ended, "the command end")
    assert "anyjob: interrupted again: exiting now" in done
    assert re.search(r"^exit=130$", done, re.MULTILINE)
