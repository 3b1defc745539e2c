"""Where the default hook logs: structlog once the application configured it, else the standard library."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from anyjob import Context, Executor, Job, Retry, instrumentation
from anyjob.instrumentation import _hooks, _logging

pytestmark = pytest.mark.anyio

STARTED, FAILED, RETRY = (
    instrumentation.JOB_STARTED,
    instrumentation.JOB_FAILED,
    instrumentation.RETRY_SCHEDULED,
)


async def ok(ctx: Context) -> int:
    return 1


async def bad(ctx: Context) -> None:
    msg = "nope"
    raise ValueError(msg)


@pytest.fixture
def unconfigured(monkeypatch: pytest.MonkeyPatch) -> Iterator[logging.Logger]:
    """structlog never configured (as in a new application), and the default hook alone."""
    structlog.reset_defaults()
    monkeypatch.setattr(_hooks, "logger", structlog.get_logger("anyjob"))
    instrumentation.set_hooks([instrumentation.StructlogHook()])
    stdlib = logging.getLogger("anyjob")
    yield stdlib
    stdlib.setLevel(logging.NOTSET)
    stdlib.disabled = False
    logging.disable(logging.NOTSET)
    structlog.reset_defaults()


def anyjob_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "anyjob"]


async def test_a_failure_goes_to_logging_with_its_traceback_and_nothing_to_stdout(
    unconfigured: logging.Logger, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    failing = Job(bad, name="broken")
    await Job(ok, name="good").run()
    await failing.run()
    [record] = anyjob_records(caplog)  # the debug events are below logging's default level
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        f"anyjob.job_failed job_id={failing.id!r} job_name='broken' "
        f"duration={round(failing.stats().execution_time.total_seconds(), 6)!r} error='ValueError: nope'"
    )
    assert record.exc_info is not None
    assert record.exc_info[1] is failing.error
    # The fields are the record's attributes too, for a structured formatter.
    fields: dict[str, Any] = vars(record)
    assert fields["event"] == "anyjob.job_failed"
    assert fields["job_id"] == failing.id
    assert fields["job_name"] == "broken"
    assert fields["error"] == "ValueError: nope"
    text = caplog.text
    assert "Traceback (most recent call last):" in text
    assert ", in bad\n" in text
    assert capsys.readouterr().out == ""
    assert not structlog.is_configured()  # and anyjob configured nothing


async def test_a_retried_attempt_is_retry_scheduled_at_info_not_a_failure(
    unconfigured: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="anyjob")
    executor = Executor(Job(bad, name="flaky"), retry=Retry(2, delay=0))
    with pytest.raises(ValueError, match="nope"):
        await executor.start()
    logged = [(r.levelname, r.getMessage().split()[0]) for r in anyjob_records(caplog)]
    assert logged == [
        ("DEBUG", "anyjob.job_started"),
        ("INFO", "anyjob.retry_scheduled"),
        ("WARNING", "anyjob.job_failed"),  # once: the job's end, not each attempt
    ]
    retry = anyjob_records(caplog)[1]
    assert "attempt=1 wait=0.0 error='ValueError: nope'" in retry.getMessage()
    assert retry.exc_info is None  # the traceback goes with the failure


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The names of the HookEvents built."""
    names: list[object] = []
    original = instrumentation.HookEvent.__init__

    def spy(self: instrumentation.HookEvent, *args: Any, **kwargs: Any) -> None:
        names.append(kwargs.get("name"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(instrumentation.HookEvent, "__init__", spy)
    return names


async def retried_then_failed() -> None:
    with pytest.raises(ValueError, match="nope"):
        await Executor(Job(bad), retry=Retry(2, delay=0)).start()


async def test_events_logging_filters_out_are_never_built_and_its_levels_apply_at_once(
    unconfigured: logging.Logger, built: list[object]
) -> None:
    await Job(ok).run()
    await retried_then_failed()
    assert built == [FAILED]  # logging's default level is WARNING
    built.clear()

    unconfigured.setLevel(logging.INFO)
    await retried_then_failed()
    assert built == [RETRY, FAILED]
    built.clear()

    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.DEBUG)  # the root's level applies to "anyjob" (NOTSET)
    unconfigured.setLevel(logging.NOTSET)
    try:
        await Job(ok).run()
        assert built == [STARTED, instrumentation.JOB_SUCCEEDED]
    finally:
        root.setLevel(before)
    built.clear()

    logging.disable(logging.CRITICAL)
    await retried_then_failed()
    logging.disable(logging.NOTSET)
    unconfigured.disabled = True  # what logging.config.dictConfig does to loggers it does not name
    await retried_then_failed()
    assert built == []
    unconfigured.disabled = False
    await retried_then_failed()
    assert built == [FAILED]


def test_the_answer_logging_gives_is_read_without_a_call(unconfigured: logging.Logger) -> None:
    assert _logging.FAST  # CPython's Logger, with its cache of answers
    assert [_hooks.wanted(STARTED), _hooks.wanted(FAILED)] == [False, True]  # worked out and kept
    calls: list[str] = []

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event in {"call", "c_call"}:
            calls.append(getattr(arg, "__name__", frame.f_code.co_name))

    sys.setprofile(profile)
    try:
        answers = [_hooks.wanted(STARTED), _hooks.wanted(FAILED)]
    finally:
        sys.setprofile(None)
    assert answers == [False, True]
    assert calls == ["wanted", "wanted", "setprofile"]  # nothing called inside wanted()


def test_another_logger_class_is_asked_every_time(
    unconfigured: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_logging, "FAST", False)
    instrumentation.set_hooks([instrumentation.StructlogHook()])  # fresh decisions
    assert [_hooks.wanted(STARTED), _hooks.wanted(FAILED)] == [False, True]
    unconfigured.setLevel(logging.DEBUG)
    assert [_hooks.wanted(STARTED), _hooks.wanted(FAILED)] == [True, True]
    unconfigured.setLevel(logging.ERROR)
    assert [_hooks.wanted(STARTED), _hooks.wanted(FAILED)] == [False, False]


async def test_another_hook_that_wants_everything_still_gets_everything(unconfigured: logging.Logger) -> None:
    seen: list[str] = []
    instrumentation.set_hooks([*instrumentation.get_hooks(), lambda event: seen.append(event.name)])
    await Job(ok).run()
    assert seen == [STARTED, instrumentation.JOB_SUCCEEDED]


async def test_a_broken_hook_is_logged_through_logging_with_its_traceback(
    unconfigured: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: instrumentation.HookEvent) -> None:
        msg = "hook bug"
        raise RuntimeError(msg)

    instrumentation.set_hooks([broken])
    await Job(ok).run()
    records = anyjob_records(caplog)
    assert [(r.levelno, r.getMessage().split()[0]) for r in records] == [
        (logging.ERROR, "anyjob.hook_failed")
    ] * 2
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], RuntimeError)


async def test_once_structlog_is_configured_it_gets_the_events_and_logging_none(
    unconfigured: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="anyjob")
    with capture_logs() as logs:  # configures structlog (processors only)
        await retried_then_failed()
    assert [(log["event"], log["log_level"]) for log in logs] == [
        ("anyjob.job_started", "debug"),
        ("anyjob.retry_scheduled", "info"),
        ("anyjob.job_failed", "warning"),
    ]
    assert logs[1]["attempt"] == 1
    assert "exception" not in logs[1]
    assert logs[2]["exception"].startswith("Traceback (most recent call last):")
    assert anyjob_records(caplog) == []


async def test_structlog_filtering_at_info_logs_retries_and_failures(unconfigured: logging.Logger) -> None:
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        processors=[structlog.testing.LogCapture()],
    )
    with capture_logs() as logs:
        await Job(ok).run()
        await retried_then_failed()
    assert [log["event"] for log in logs] == ["anyjob.retry_scheduled", "anyjob.job_failed"]
