from __future__ import annotations

import logging
from collections.abc import Iterator

import anyio
import pytest
import structlog
from structlog.testing import capture_logs

from anyjob import Context, Job, State, instrumentation
from anyjob.testing import capture_events

pytestmark = pytest.mark.anyio


async def ok(ctx: Context) -> int:
    return 1


async def bad(ctx: Context) -> None:
    msg = "nope"
    raise ValueError(msg)


async def slow(ctx: Context) -> None:
    await anyio.sleep_forever()


async def test_lifecycle_events_reach_hooks() -> None:
    with capture_events() as events:
        job = Job(ok, labels={"k": "v"})
        await job.run()
        failing = Job(bad)
        await failing.run()
        canceled = Job(slow)
        async with anyio.create_task_group() as tg:
            await tg.start(canceled.run)
            canceled.cancel()
    names = [(e.name, e.job_id) for e in events]
    assert names == [
        (instrumentation.JOB_STARTED, job.id),
        (instrumentation.JOB_SUCCEEDED, job.id),
        (instrumentation.JOB_STARTED, failing.id),
        (instrumentation.JOB_FAILED, failing.id),
        (instrumentation.JOB_STARTED, canceled.id),
        (instrumentation.JOB_CANCELED, canceled.id),
    ]
    assert events[0].state is State.RUNNING
    assert events[0].labels == {"k": "v"}
    assert events[1].state is State.SUCCEEDED
    assert events[1].duration is not None
    assert events[1].duration >= 0
    assert isinstance(events[3].error, ValueError)
    assert events[5].state is State.CANCELED
    with pytest.raises(AttributeError):
        events[0].name = "x"  # type: ignore[misc]


async def test_default_hook_logs_failures_at_warning_and_changes_at_debug() -> None:
    assert isinstance(instrumentation.get_hooks()[0], instrumentation.StructlogHook)
    with capture_logs() as logs:
        job = Job(ok, name="good")
        await job.run()
        failing = Job(bad, name="broken")
        await failing.run()
    assert [(log["event"], log["log_level"]) for log in logs] == [
        ("anyjob.job_started", "debug"),
        ("anyjob.job_succeeded", "debug"),
        ("anyjob.job_started", "debug"),
        ("anyjob.job_failed", "warning"),
    ]
    assert logs[3]["job_id"] == failing.id
    assert logs[3]["job_name"] == "broken"
    assert logs[3]["error"] == "ValueError: nope"


async def test_set_hooks_empty_silences() -> None:
    instrumentation.set_hooks([])
    with capture_logs() as logs:
        await Job(bad).run()
    assert logs == []
    instrumentation.reset_hooks()
    assert len(instrumentation.get_hooks()) == 1


async def test_broken_hook_never_breaks_the_job() -> None:
    def broken(event: instrumentation.HookEvent) -> None:
        msg = "hook bug"
        raise RuntimeError(msg)

    seen: list[str] = []
    instrumentation.set_hooks([broken, lambda e: seen.append(e.name)])
    with capture_logs() as logs:
        job = Job(ok)
        await job.run()
    assert job.state is State.SUCCEEDED
    assert seen == [instrumentation.JOB_STARTED, instrumentation.JOB_SUCCEEDED]
    assert [log["event"] for log in logs] == ["anyjob.hook_failed"] * 2
    assert logs[0]["log_level"] == "error"


def test_set_hooks_refuses_non_callables() -> None:
    with pytest.raises(TypeError, match="callable"):
        instrumentation.set_hooks([42])  # type: ignore[list-item]
    assert isinstance(instrumentation.get_hooks()[0], instrumentation.StructlogHook)


async def test_capture_events_keep_hooks_and_restores() -> None:
    before = instrumentation.get_hooks()
    with capture_logs() as logs, capture_events(keep_hooks=True) as events:
        await Job(ok).run()
    assert len(events) == 2
    assert len(logs) == 2
    assert instrumentation.get_hooks() == before


def test_library_never_configures_logging() -> None:
    import subprocess
    import sys

    code = """
import logging, anyio, structlog, anyjob

async def main():
    async def fn(ctx):
        raise ValueError("x")
    await anyjob.Job(fn).run()
    ex = anyjob.Executor(anyjob.Job(fn), retry=anyjob.Retry(2, delay=0))
    try:
        await ex.start()
    except ValueError:
        pass

anyio.run(main)
assert not structlog.is_configured()
assert logging.getLogger().handlers == []
assert logging.getLogger("anyjob").handlers == []
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # never printed into the application's own output
    # Through the standard library's "anyjob" logger to logging's last resort (stderr, warnings):
    # both failures, each with its traceback; the retry (info) is not a warning.
    assert result.stderr.count("anyjob.job_failed job_id=") == 2, result.stderr
    assert result.stderr.count("Traceback (most recent call last):") == 2
    assert "retry_scheduled" not in result.stderr


async def test_selective_hooks_are_asked_before_events_are_built() -> None:
    asked: list[str] = []
    got: list[str] = []

    class OnlyFailures:
        def wants(self, name: str) -> bool:
            asked.append(name)
            return name == instrumentation.JOB_FAILED

        def __call__(self, event: instrumentation.HookEvent) -> None:
            got.append(event.name)

    instrumentation.set_hooks([OnlyFailures()])
    await Job(ok).run()
    await Job(bad).run()
    assert asked == [
        instrumentation.JOB_STARTED,
        instrumentation.JOB_SUCCEEDED,
        instrumentation.JOB_STARTED,
        instrumentation.JOB_FAILED,
    ]
    assert got == [instrumentation.JOB_FAILED]


async def test_default_hook_builds_no_event_for_filtered_levels() -> None:
    import logging

    import structlog

    built: list[object] = []
    original = instrumentation.HookEvent.__init__

    def spy(self: object, *args: object, **kwargs: object) -> None:
        built.append(kwargs.get("name"))
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        instrumentation.HookEvent.__init__ = spy  # type: ignore[method-assign]
        await Job(ok).run()
        await Job(bad).run()
    finally:
        instrumentation.HookEvent.__init__ = original  # type: ignore[method-assign]
        structlog.reset_defaults()
    assert built == [instrumentation.JOB_FAILED]


def test_structlog_hook_asks_structlogs_cached_logger_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    from anyjob.instrumentation import _hooks

    def proxy(*, cache: bool) -> object:
        return structlog.wrap_logger(
            structlog.PrintLogger(),
            wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
            cache_logger_on_first_use=cache,
        )

    structlog.configure()  # so debug events are asked about too
    try:
        monkeypatch.setattr(_hooks, "logger", proxy(cache=True))
        hook = _hooks.StructlogHook()
        answers = [hook.wants("anyjob.job_failed"), hook.wants("anyjob.job_started")]
        assert answers == [True, False]
        assert "bind" in vars(_hooks.logger)  # structlog cached it on first use: it never changes now
        assert [hook.wants("anyjob.job_failed"), hook.wants("anyjob.job_started")] == [True, False]
        assert [_hooks.wanted("anyjob.job_failed"), _hooks.wanted("anyjob.job_started")] == [True, False]

        monkeypatch.setattr(_hooks, "logger", proxy(cache=False))
        uncached = _hooks.StructlogHook()
        assert [uncached.wants(instrumentation.SHUTDOWN_OVERDUE), uncached.wants(STARTED)] == [True, False]
        assert "bind" not in vars(_hooks.logger)  # structlog may be reconfigured: asked through the proxy
        assert [_hooks.wanted("anyjob.job_failed"), _hooks.wanted("anyjob.job_started")] == [True, False]
    finally:
        structlog.reset_defaults()


def test_structlog_hook_logs_debug_events_only_once_structlog_is_configured() -> None:
    from anyjob.instrumentation import _hooks

    hook = _hooks.StructlogHook()
    structlog.reset_defaults()
    try:
        assert not structlog.is_configured()
        assert hook.wants("anyjob.job_failed") is True  # warnings always
        assert hook.wants("anyjob.job_started") is False  # unconfigured structlog would print it
        structlog.configure(processors=[structlog.processors.KeyValueRenderer()])
        assert hook.wants("anyjob.job_started") is True
    finally:
        structlog.reset_defaults()


# -- the answers of wanted() are worked out once, and never go stale -----------------------


@pytest.fixture
def fresh_structlog(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """structlog unconfigured, and a default hook and logger that no earlier test cached."""
    from anyjob.instrumentation import _hooks

    structlog.reset_defaults()
    monkeypatch.setattr(_hooks, "logger", structlog.get_logger("anyjob"))
    instrumentation.set_hooks([instrumentation.StructlogHook()])
    yield
    structlog.reset_defaults()


def _wanted(*names: str) -> list[bool]:
    from anyjob.instrumentation import _hooks

    return [_hooks.wanted(name) for name in names]


STARTED, FAILED = instrumentation.JOB_STARTED, instrumentation.JOB_FAILED


async def _logged_by_a_job_and_a_manager() -> list[tuple[str, str]]:
    from anyjob import JobManager

    with capture_logs() as logs:  # configures processors only: the level stays the application's
        await Job(ok).run()
        async with JobManager() as jobs:
            await jobs.wait((await jobs.submit(bad)).id)
    return [(log["event"], log["log_level"]) for log in logs]


@pytest.mark.usefixtures("fresh_structlog")
def test_wanted_is_decided_once_per_event_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from anyjob.instrumentation import _hooks

    assert _hooks._CONFIG is not None  # this structlog's configuration can be watched: answers are kept
    asked: list[bool] = []
    real = structlog.is_configured

    def counting() -> bool:
        asked.append(True)
        return real()

    monkeypatch.setattr(structlog, "is_configured", counting)
    assert _wanted(STARTED, FAILED, STARTED, FAILED, STARTED) == [False, True, False, True, False]
    assert len(asked) <= 2  # once for each name, not once for each question


@pytest.mark.usefixtures("fresh_structlog")
def test_wanted_follows_the_hooks_when_they_are_replaced() -> None:
    from anyjob.instrumentation import _hooks

    assert _wanted(STARTED, FAILED) == [False, True]  # the default hook, structlog unconfigured
    instrumentation.set_hooks([lambda event: None])
    assert _wanted(STARTED, FAILED) == [True, True]  # a hook without wants gets everything
    instrumentation.set_hooks([])
    assert _wanted(STARTED, FAILED) == [False, False]
    instrumentation.set_hooks([instrumentation.StructlogHook()])
    assert _wanted(STARTED, FAILED) == [False, True]

    answers = iter([True, False, True])

    class Changing:
        def wants(self, name: str) -> bool:
            return next(answers)

        def __call__(self, event: instrumentation.HookEvent) -> None: ...

    instrumentation.set_hooks([*instrumentation.get_hooks(), Changing()])
    assert _wanted(STARTED, STARTED, STARTED) == [True, False, True]  # asked every time
    _hooks.active = (instrumentation.StructlogHook(),)  # even a direct assignment is noticed
    assert _wanted(STARTED, FAILED) == [False, True]


@pytest.mark.usefixtures("fresh_structlog")
async def test_default_hook_notices_structlog_configured_after_the_first_job() -> None:
    await Job(ok).run()  # the answers for unconfigured structlog are worked out here
    assert _wanted(STARTED) == [False]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    assert _wanted(STARTED) == [True]
    assert await _logged_by_a_job_and_a_manager() == [
        ("anyjob.job_started", "debug"),
        ("anyjob.job_succeeded", "debug"),
        ("anyjob.job_started", "debug"),
        ("anyjob.job_failed", "warning"),
    ]
    structlog.reset_defaults()
    assert _wanted(STARTED, FAILED) == [False, True]


@pytest.mark.usefixtures("fresh_structlog")
async def test_default_hook_follows_the_level_of_a_filtering_logger() -> None:
    for level, expected in [
        (logging.DEBUG, 4),
        (logging.WARNING, 1),
        (logging.ERROR, 0),
        (logging.DEBUG, 4),  # back to a level seen before
    ]:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))
        logged = await _logged_by_a_job_and_a_manager()
        assert len(logged) == expected, (logging.getLevelName(level), logged)
        assert _wanted(STARTED, FAILED) == [level <= logging.DEBUG, level <= logging.WARNING]


@pytest.mark.usefixtures("fresh_structlog")
async def test_default_hook_keeps_a_logger_structlog_cached() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    assert _wanted(STARTED) == [True]
    structlog.configure(cache_logger_on_first_use=True)
    assert _wanted(STARTED) == [True]  # asking assembled anyjob's logger, and structlog cached it
    # As structlog does for a cached logger, the new level no longer applies to it.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    assert _wanted(STARTED, FAILED) == [True, True]
    assert len(await _logged_by_a_job_and_a_manager()) == 4


@pytest.mark.usefixtures("fresh_structlog")
def test_default_hook_asks_a_standard_library_logger_every_time() -> None:
    structlog.configure(
        wrapper_class=structlog.stdlib.BoundLogger, logger_factory=structlog.stdlib.LoggerFactory()
    )
    stdlib = logging.getLogger("anyjob")
    try:
        stdlib.setLevel(logging.DEBUG)
        assert _wanted(STARTED, FAILED) == [True, True]
        stdlib.setLevel(logging.WARNING)  # structlog is not told: the level is asked every time
        assert _wanted(STARTED, FAILED) == [False, True]
        stdlib.setLevel(logging.CRITICAL)
        assert _wanted(STARTED, FAILED) == [False, False]
    finally:
        stdlib.setLevel(logging.NOTSET)


# -- the traceback of a failed job ---------------------------------------------------------------


async def test_a_failed_jobs_warning_carries_its_traceback() -> None:
    with capture_logs() as logs:
        await Job(ok, name="good").run()
        await Job(bad, name="broken").run()
    [failed] = [log for log in logs if log["event"] == "anyjob.job_failed"]
    assert failed["error"] == "ValueError: nope"
    trace = failed["exception"]
    assert trace.startswith("Traceback (most recent call last):")
    assert ", in bad\n" in trace
    assert trace.endswith("ValueError: nope\n")
    assert all("exception" not in log for log in logs if log is not failed)


async def test_the_traceback_of_a_failure_is_bounded_and_storable() -> None:
    from anyjob._error_text import MAX_STORED_TRACEBACK_LENGTH

    async def huge(ctx: Context) -> None:
        raise ValueError("\x00" + "x" * 100_000)

    with capture_logs() as logs:
        await Job(huge).run()
    [failed] = [log for log in logs if log["event"] == "anyjob.job_failed"]
    assert len(failed["exception"]) <= MAX_STORED_TRACEBACK_LENGTH
    assert "\x00" not in failed["exception"]


@pytest.mark.usefixtures("fresh_structlog")
async def test_the_traceback_is_formatted_only_when_the_warning_is_logged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from anyjob._error_text import traceback_text as original
    from anyjob.instrumentation import _logging

    formatted: list[BaseException] = []

    def counting(error: BaseException) -> str:
        formatted.append(error)
        return original(error)

    monkeypatch.setattr(_logging, "traceback_text", counting)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    await Job(bad).run()
    assert formatted == []  # the warning is filtered out: nothing formatted
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        processors=[structlog.testing.LogCapture()],
    )
    await Job(bad).run()
    assert [type(error) for error in formatted] == [ValueError]


async def test_a_failure_whose_message_cannot_print_itself_is_still_logged() -> None:
    class UnprintableError(Exception):
        def __str__(self) -> str:
            msg = "no text for you"
            raise RuntimeError(msg)

    async def unprintable(ctx: Context) -> None:
        raise UnprintableError

    with capture_logs() as logs:
        await Job(unprintable).run()
    [failed] = [log for log in logs if log["event"] == "anyjob.job_failed"]
    assert "UnprintableError" in failed["error"]
    assert "UnprintableError" in failed["exception"]
    assert not [log for log in logs if log["event"] == "anyjob.hook_failed"]


def test_structlogs_console_shows_the_traceback_below_the_line() -> None:
    renderer = structlog.dev.ConsoleRenderer(colors=False)
    trace = "Traceback (most recent call last):\n  File 'x.py', line 1\nValueError: nope\n"
    line = renderer(None, "warning", {"event": "anyjob.job_failed", "job_id": "j", "exception": trace})
    assert isinstance(line, str)
    assert line.endswith("\n" + trace)
