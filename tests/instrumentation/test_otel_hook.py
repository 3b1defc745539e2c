"""anyjob.instrumentation.otel: spans per job and per attempt, read back from the SDK's in-memory exporter."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import anyio
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from anyjob import Context, Executor, Job, JobManager, Retry, State, instrumentation
from anyjob.instrumentation import otel

pytestmark = pytest.mark.anyio


@pytest.fixture
def provider() -> TracerProvider:
    return TracerProvider()


@pytest.fixture
def exporter(provider: TracerProvider) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def hook(provider: TracerProvider, exporter: InMemorySpanExporter) -> otel.OtelHook:
    made = otel.hook(tracer_provider=provider)
    instrumentation.set_hooks([*instrumentation.get_hooks(), made])
    return made  # the autouse fixture of conftest.py restores the default hooks


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert len(spans) == len(exporter.get_finished_spans()), "span names are unique in these tests"
    return spans


def parent_of(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


async def ok(ctx: Context) -> int:
    return 1


async def bad(ctx: Context) -> None:
    msg = "nope"
    raise ValueError(msg)


async def test_a_job_is_a_span_with_one_attempt_inside(
    hook: otel.OtelHook, exporter: InMemorySpanExporter
) -> None:
    job = Job(ok, name="good", labels={"team": "a", "kind": "b"})
    await job.run()
    spans = by_name(exporter)
    assert set(spans) == {"good", "good attempt 1"}
    run, attempt = spans["good"], spans["good attempt 1"]
    assert dict(run.attributes or {}) == {
        "anyjob.job.id": job.id,
        "anyjob.job.name": "good",
        "anyjob.job.label.team": "a",
        "anyjob.job.label.kind": "b",
        "anyjob.job.state": "succeeded",
        "anyjob.job.attempts": 1,
    }
    assert attempt.attributes is not None
    assert attempt.attributes["anyjob.attempt"] == 1
    assert attempt.attributes["anyjob.job.id"] == job.id
    assert attempt.attributes["anyjob.job.label.team"] == "a"
    assert parent_of(attempt) == span_id(run)
    assert run.status.status_code is StatusCode.UNSET
    assert attempt.status.status_code is StatusCode.UNSET
    assert run.start_time is not None
    assert run.end_time is not None
    assert attempt.start_time is not None
    assert attempt.end_time is not None
    assert run.start_time <= attempt.start_time <= attempt.end_time <= run.end_time
    assert hook.span(job.id) is None  # nothing is left open


async def test_a_failed_job_has_status_error_and_the_exception_recorded(
    hook: otel.OtelHook, exporter: InMemorySpanExporter
) -> None:
    await Job(bad, name="broken").run()
    spans = by_name(exporter)
    for span in (spans["broken"], spans["broken attempt 1"]):
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "ValueError: nope"
        [recorded] = span.events
        assert recorded.name == "exception"
        assert recorded.attributes is not None
        assert recorded.attributes["exception.type"] == "ValueError"
        assert recorded.attributes["exception.message"] == "nope"
        assert ", in bad\n" in str(recorded.attributes["exception.stacktrace"])
    assert spans["broken"].attributes is not None
    assert spans["broken"].attributes["anyjob.job.state"] == "failed"


async def test_each_attempt_of_a_retried_job_is_a_span_under_the_job(
    hook: otel.OtelHook, exporter: InMemorySpanExporter
) -> None:
    tries: list[int] = []

    async def flaky(ctx: Context) -> str:
        tries.append(1)
        if len(tries) < 3:
            msg = f"try {len(tries)}"
            raise ConnectionError(msg)
        return "done"

    executor = Executor(Job(flaky, name="flaky"), retry=Retry(3, delay=0.001))
    assert await executor.start() == "done"
    spans = by_name(exporter)
    run = spans["flaky"]
    attempts = [spans[f"flaky attempt {n}"] for n in (1, 2, 3)]
    assert len(spans) == 4
    assert all(parent_of(attempt) == span_id(run) for attempt in attempts)
    assert [a.status.status_code for a in attempts] == [StatusCode.ERROR, StatusCode.ERROR, StatusCode.UNSET]
    assert [a.status.description for a in attempts[:2]] == [
        "ConnectionError: try 1",
        "ConnectionError: try 2",
    ]
    assert [dict(a.attributes or {})["anyjob.attempt"] for a in attempts] == [1, 2, 3]
    assert dict(attempts[0].attributes or {})["anyjob.retry.wait"] == pytest.approx(0.001)
    assert run.status.status_code is StatusCode.UNSET
    assert dict(run.attributes or {})["anyjob.job.attempts"] == 3
    moments = [run.start_time]
    for attempt in attempts:
        moments += [attempt.start_time, attempt.end_time]
    moments.append(run.end_time)
    times = [moment for moment in moments if moment is not None]
    assert len(times) == 8
    assert times == sorted(times)  # one after another, all inside the job's span


async def test_every_attempt_of_a_job_that_fails_to_the_end_records_its_error(
    hook: otel.OtelHook, exporter: InMemorySpanExporter
) -> None:
    executor = Executor(Job(bad, name="hopeless"), retry=Retry(2, delay=0))
    with pytest.raises(ValueError, match="nope"):
        await executor.start()
    spans = by_name(exporter)
    assert set(spans) == {"hopeless", "hopeless attempt 1", "hopeless attempt 2"}
    assert all(span.status.status_code is StatusCode.ERROR for span in spans.values())
    assert all([e.name for e in span.events] == ["exception"] for span in spans.values())


@pytest.mark.parametrize(
    "anyio_backend",
    [pytest.param("mock", id="trio-mockclock"), pytest.param("asyncio", id="asyncio")],
    indirect=True,
)
async def test_a_job_canceled_while_a_retry_waits_has_no_span_for_the_attempt_that_never_began(
    anyio_backend: Any, hook: otel.OtelHook, exporter: InMemorySpanExporter
) -> None:
    scheduled = anyio.Event()

    def on_retry(event: instrumentation.HookEvent) -> None:
        if event.name == instrumentation.RETRY_SCHEDULED:
            scheduled.set()

    instrumentation.set_hooks([*instrumentation.get_hooks(), on_retry])
    executor = Executor(Job(bad, name="waiting"), retry=Retry(3, delay=3600))
    async with anyio.create_task_group() as tg:

        async def start() -> None:
            with pytest.raises(anyjob_canceled_error()):
                await executor.start()

        tg.start_soon(start)
        await scheduled.wait()
        assert await executor.stop()
    spans = by_name(exporter)
    assert set(spans) == {"waiting", "waiting attempt 1"}
    run = spans["waiting"]
    assert dict(run.attributes or {})["anyjob.job.state"] == "canceled"
    assert dict(run.attributes or {})["anyjob.job.attempts"] == 1
    assert run.status.status_code is StatusCode.UNSET
    assert spans["waiting attempt 1"].status.status_code is StatusCode.ERROR


def anyjob_canceled_error() -> type[Exception]:
    from anyjob import JobCanceledError

    return JobCanceledError


@pytest.mark.parametrize("anyio_backend", [pytest.param("mock", id="trio-mockclock")], indirect=True)
async def test_attempts_after_a_long_wait_are_found_on_the_event_loops_clock(
    anyio_backend: Any, hook: otel.OtelHook, exporter: InMemorySpanExporter
) -> None:
    # A MockClock jumps over the hour-long waits at once: the event loop's clock, not the
    # wall clock, tells that the next attempt began.
    executor = Executor(Job(bad, name="patient"), retry=Retry(3, delay=3600))
    with pytest.raises(ValueError, match="nope"):
        await executor.start()
    assert set(by_name(exporter)) == {
        "patient",
        "patient attempt 1",
        "patient attempt 2",
        "patient attempt 3",
    }


async def test_a_canceled_job_ends_its_spans_without_an_error(
    hook: otel.OtelHook, exporter: InMemorySpanExporter
) -> None:
    started = anyio.Event()

    async def slow(ctx: Context) -> None:
        started.set()
        await anyio.sleep_forever()

    job = Job(slow, name="slow")
    async with anyio.create_task_group() as tg:
        tg.start_soon(job.run)
        await started.wait()
        assert hook.span(job.id) is not None  # open while it runs
        job.cancel()
    assert job.state is State.CANCELED
    spans = by_name(exporter)
    assert set(spans) == {"slow", "slow attempt 1"}
    for span in spans.values():
        assert span.status.status_code is StatusCode.UNSET
        assert dict(span.attributes or {})["anyjob.job.state"] == "canceled"
        assert span.end_time is not None


async def test_a_job_span_is_a_child_of_the_span_current_where_it_started(
    provider: TracerProvider, hook: otel.OtelHook, exporter: InMemorySpanExporter
) -> None:
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("request"):
        await Job(ok, name="inside").run()
    spans = by_name(exporter)
    assert parent_of(spans["inside"]) == span_id(spans["request"])
    assert spans["inside"].context is not None
    assert spans["inside"].context.trace_id == span_id_trace(spans["request"])


def span_id_trace(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.trace_id)


async def test_a_job_can_nest_its_own_spans_under_its_span(
    provider: TracerProvider, hook: otel.OtelHook, exporter: InMemorySpanExporter
) -> None:
    tracer = provider.get_tracer("test")

    async def traced(ctx: Context) -> None:
        span = hook.span(ctx.id)
        assert span is not None
        with trace.use_span(span, end_on_exit=False), tracer.start_as_current_span("work"):
            pass

    await Job(traced, name="traced").run()
    spans = by_name(exporter)
    assert parent_of(spans["work"]) == span_id(spans["traced"])


async def test_jobs_of_a_manager_are_spans_too(hook: otel.OtelHook, exporter: InMemorySpanExporter) -> None:
    async with JobManager() as jobs:
        plain = await jobs.submit(ok, name="plain", labels={"via": "manager"})
        retried = await jobs.submit(bad, name="retried", retry=Retry(2, delay=0))
        await jobs.wait(plain.id)
        await jobs.wait(retried.id)
    spans = by_name(exporter)
    assert set(spans) == {"plain", "plain attempt 1", "retried", "retried attempt 1", "retried attempt 2"}
    assert dict(spans["plain"].attributes or {})["anyjob.job.id"] == plain.id
    assert dict(spans["plain"].attributes or {})["anyjob.job.label.via"] == "manager"
    assert spans["retried"].status.status_code is StatusCode.ERROR


def test_an_end_whose_start_was_not_seen_is_one_span_over_its_duration(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    hook = otel.hook(tracer_provider=provider)
    hook(
        instrumentation.HookEvent(
            name=instrumentation.JOB_SUCCEEDED,
            job_id="j1",
            job_name="elsewhere",
            labels={},
            state=State.SUCCEEDED,
            duration=2.5,
        )
    )
    spans = by_name(exporter)
    run = spans["elsewhere"]
    assert run.start_time is not None
    assert run.end_time is not None
    assert run.end_time - run.start_time == pytest.approx(2.5e9, rel=1e-6)
    assert parent_of(spans["elsewhere attempt 1"]) == span_id(run)


def test_a_job_started_again_before_its_end_was_seen_closes_the_spans_left_open(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    hook = otel.hook(tracer_provider=provider)
    started = instrumentation.HookEvent(
        name=instrumentation.JOB_STARTED, job_id="j1", job_name="again", labels={}, state=State.RUNNING
    )
    hook(started)
    hook(started)
    assert len(exporter.get_finished_spans()) == 2  # the first start's job and attempt
    assert hook.span("j1") is not None


def test_without_opentelemetry_the_import_says_which_extra_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None\n"
        "try:\n"
        "    import anyjob.instrumentation.otel\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'anyjob[otel]'" in result.stdout


@pytest.mark.parametrize("duration", [None, float("inf"), float("nan"), -1.0])
def test_an_end_of_unknown_duration_is_a_span_of_no_length(
    provider: TracerProvider, exporter: InMemorySpanExporter, duration: float | None
) -> None:
    hook = otel.hook(tracer_provider=provider)
    hook(
        instrumentation.HookEvent(
            name=instrumentation.JOB_FAILED,
            job_id="j1",
            job_name="odd",
            labels={},
            state=State.FAILED,
            error=ValueError("x"),
            duration=duration,
        )
    )
    run = by_name(exporter)["odd"]
    assert run.start_time == run.end_time
    assert run.status.status_code is StatusCode.ERROR


def test_a_job_overdue_at_shutdown_is_an_event_on_its_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    hook = otel.hook(tracer_provider=provider)
    fields: dict[str, Any] = {"job_id": "j1", "job_name": "stubborn", "labels": {}}
    hook(instrumentation.HookEvent(name=instrumentation.JOB_STARTED, state=State.RUNNING, **fields))
    overdue = instrumentation.SHUTDOWN_OVERDUE
    hook(instrumentation.HookEvent(name=overdue, state=State.CANCELING, duration=12.0, **fields))
    hook(instrumentation.HookEvent(name=instrumentation.JOB_CANCELED, state=State.CANCELED, **fields))
    [event] = by_name(exporter)["stubborn"].events
    assert event.name == overdue
    assert dict(event.attributes or {}) == {"anyjob.closing_seconds": 12.0}
