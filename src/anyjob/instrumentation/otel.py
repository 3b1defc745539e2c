"""OpenTelemetry spans for anyjob's jobs, through the hook registry (``pip install 'anyjob[otel]'``).

One span per job, from its start to its end, and inside it one span per attempt::

    from anyjob import instrumentation
    from anyjob.instrumentation import otel

    instrumentation.set_hooks([*instrumentation.get_hooks(), otel.hook()])

The job's span is named after the job and is a child of the span that was current
where the job started (``await job.run()``, or a manager's worker); an attempt's span,
named ``"<job name> attempt <n>"``, is a child of its job's. Both carry the job's id,
name and labels as attributes (``anyjob.job.id``, ``anyjob.job.name``,
``anyjob.job.label.<key>``), an attempt's span its number (``anyjob.attempt``). A
failed attempt, and a failed job, end with status ERROR and the exception recorded
(with its traceback); a canceled job's spans end with status UNSET and
``anyjob.job.state = "canceled"``.

Only the hook events are used, so the times of attempts after the first are worked
out from ``anyjob.retry_scheduled`` (the failed attempt's end, and the wait before the
next one, on the event loop's clock): an attempt that never began, because the job was
canceled during the wait, has no span.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Final, final

import anyio
import attrs

try:
    from opentelemetry import trace
    from opentelemetry.trace import Span, Status, StatusCode, Tracer, TracerProvider
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without the extra
    msg = "anyjob.instrumentation.otel needs OpenTelemetry's API: pip install 'anyjob[otel]'"
    raise ImportError(msg) from exc

from anyjob._error_text import error_text
from anyjob._version import __version__
from anyjob.instrumentation._hooks import (
    JOB_CANCELED,
    JOB_FAILED,
    JOB_STARTED,
    JOB_SUCCEEDED,
    RETRY_SCHEDULED,
    SHUTDOWN_OVERDUE,
    HookEvent,
)

__all__ = ["OtelHook", "hook"]

_ENDS: Final = {JOB_SUCCEEDED: "succeeded", JOB_FAILED: "failed", JOB_CANCELED: "canceled"}


def hook(tracer_provider: TracerProvider | None = None) -> OtelHook:
    """A hook that makes OpenTelemetry spans of every job and attempt (see the module).

    Args:
        tracer_provider: Where the spans go; by default the global one
            (``opentelemetry.trace.set_tracer_provider``), also when it is set later.

    Add it to the active hooks:
    ``instrumentation.set_hooks([*instrumentation.get_hooks(), otel.hook()])``.
    """
    return OtelHook(trace.get_tracer("anyjob", __version__, tracer_provider=tracer_provider))


def _now() -> float:
    """The event loop's clock (the one retry waits are measured on), else the monotonic clock."""
    try:
        return anyio.current_time()
    except RuntimeError:  # no event loop here (a hook called by hand)
        return time.monotonic()


@final
@attrs.define(eq=False)
class _Open:
    """The spans of one job that has started and not ended yet."""

    job: Span
    #: The attempt running now, or ``None`` while a retry waits (or none can be known).
    attempt: Span | None
    #: The number of the attempt running now, or of the next one while a retry waits.
    number: int = 1
    #: While a retry waits: when it was scheduled (wall ns, loop s) and how long it waits.
    scheduled_ns: int = 0
    scheduled_loop: float = 0.0
    wait: float = 0.0


@final
@attrs.define(eq=False)
class OtelHook:
    """The hook :func:`hook` makes: spans per job and per attempt, kept open by job id.

    A job whose end never reaches the hook (it was added, or the hooks replaced, while
    the job ran) keeps its spans open, and unexported, until a job of the same id starts.

    Args:
        tracer: The tracer the spans are made with.
    """

    tracer: Tracer
    _open: dict[str, _Open] = attrs.field(init=False, factory=dict[str, _Open])

    def span(self, job_id: str) -> Span | None:
        """The span of the job *job_id* while it runs (``None`` otherwise).

        To nest your own spans under it, in the job's function:
        ``with trace.use_span(hook.span(ctx.id), end_on_exit=False): ...``.
        """
        spans = self._open.get(job_id)
        return None if spans is None else spans.job

    def __call__(self, event: HookEvent) -> None:
        """Start, end or annotate the spans of the job *event* is about."""
        name = event.name
        if name == JOB_STARTED:
            self._started(event)
        elif name == RETRY_SCHEDULED:
            self._retry_scheduled(event)
        elif name in _ENDS:
            self._ended(event, _ENDS[name])
        elif name == SHUTDOWN_OVERDUE:
            spans = self._open.get(event.job_id)
            if spans is not None:
                spans.job.add_event(name, {"anyjob.closing_seconds": event.duration or 0.0})

    def _attributes(self, event: HookEvent) -> dict[str, str | int]:
        attributes: dict[str, str | int] = {"anyjob.job.id": event.job_id, "anyjob.job.name": event.job_name}
        labels: Mapping[str, str] = event.labels
        for key, value in labels.items():
            attributes[f"anyjob.job.label.{key}"] = value
        return attributes

    def _started(self, event: HookEvent, start_ns: int | None = None) -> _Open:
        stale = self._open.pop(event.job_id, None)
        if stale is not None:  # its end never reached this hook: close what it left open
            _close(stale, None)
        attributes = self._attributes(event)
        job = self.tracer.start_span(event.job_name, attributes=attributes, start_time=start_ns)
        spans = _Open(job, self._attempt(job, event, 1, start_ns))
        self._open[event.job_id] = spans
        return spans

    def _attempt(self, job: Span, event: HookEvent, number: int, start_ns: int | None) -> Span:
        attributes = {**self._attributes(event), "anyjob.attempt": number}
        return self.tracer.start_span(
            f"{event.job_name} attempt {number}",
            context=trace.set_span_in_context(job),
            attributes=attributes,
            start_time=start_ns,
        )

    def _resume(self, spans: _Open, event: HookEvent, now_ns: int) -> None:
        """If a retry was waiting and its next attempt has begun since, open that attempt's span."""
        if spans.attempt is not None or spans.scheduled_ns == 0:
            return
        if _now() - spans.scheduled_loop < spans.wait:
            return  # still waiting (the job was canceled during the wait): that attempt never began
        start_ns = min(spans.scheduled_ns + int(spans.wait * 1e9), now_ns)
        spans.attempt = self._attempt(spans.job, event, spans.number, start_ns)

    def _retry_scheduled(self, event: HookEvent) -> None:
        spans = self._open.get(event.job_id)
        if spans is None:
            return  # started before this hook was added: its attempts cannot be told apart
        now_ns = time.time_ns()
        self._resume(spans, event, now_ns)
        attempt = spans.attempt
        if attempt is not None:
            attempt.set_attribute("anyjob.retry.wait", event.wait or 0.0)
            _failed(attempt, event.error)
            attempt.end(now_ns)
        spans.attempt = None
        spans.number = (event.attempt or spans.number) + 1
        spans.scheduled_ns = now_ns
        spans.scheduled_loop = _now()
        spans.wait = event.wait or 0.0

    def _ended(self, event: HookEvent, state: str) -> None:
        now_ns = time.time_ns()
        spans = self._open.pop(event.job_id, None)
        if spans is None:  # its start was not seen: one span over its duration, if known
            duration = event.duration
            start_ns = now_ns
            if duration is not None and 0 <= duration < math.inf:
                start_ns -= int(duration * 1e9)
            spans = self._started(event, start_ns)
            del self._open[event.job_id]
        else:
            self._resume(spans, event, now_ns)
        spans.job.set_attribute("anyjob.job.state", state)
        spans.job.set_attribute(
            "anyjob.job.attempts", spans.number if spans.attempt is not None else spans.number - 1
        )
        error = event.error
        if state == "failed":
            if spans.attempt is not None:
                _failed(spans.attempt, error)
            _failed(spans.job, error)
        elif error is not None:  # canceled, and the function raised while it unwound
            spans.job.record_exception(error)
        if spans.attempt is not None:
            spans.attempt.set_attribute("anyjob.job.state", state)
        _close(spans, now_ns)


def _failed(span: Span, error: BaseException | None) -> None:
    """Status ERROR on *span*, with *error* recorded (its type, message and traceback)."""
    if error is None:
        span.set_status(Status(StatusCode.ERROR))
        return
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__qualname__}: {error_text(error)}"))


def _close(spans: _Open, end_ns: int | None) -> None:
    if spans.attempt is not None:
        spans.attempt.end(end_ns)
    spans.job.end(end_ns)
