"""OpenTelemetry spans of a manager's jobs: one per job, one per attempt inside it.

Run it: ``python docs/examples/metrics_otel.py`` (needs ``anyjob[otel]`` and, for the
exporter here, ``opentelemetry-sdk``). It prints the spans as a tree.
"""

from __future__ import annotations

import anyio
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import anyjob
from anyjob import instrumentation
from anyjob.instrumentation import otel

exporter = InMemorySpanExporter()  # in production: an OTLP exporter in a BatchSpanProcessor
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

calls = 0


async def fetch(ctx: anyjob.Context) -> str:
    """Fails twice (a flaky network), then answers."""
    global calls
    calls += 1
    if calls < 3:
        msg = f"connection reset (call {calls})"
        raise ConnectionError(msg)
    # Spans the function makes itself go under the job's span this way:
    job_span = hook.span(ctx.id)
    assert job_span is not None
    with trace.use_span(job_span, end_on_exit=False), tracer.start_as_current_span("parse"):
        return "page"


async def broken(ctx: anyjob.Context) -> None:
    msg = f"no such report: {ctx.params['report']}"
    raise KeyError(msg)


hook = otel.hook()  # the global tracer provider (set above)
tracer = trace.get_tracer("example")


async def main() -> None:
    instrumentation.set_hooks([*instrumentation.get_hooks(), hook])
    with tracer.start_as_current_span("nightly batch"):  # the jobs' spans are its children
        async with anyjob.JobManager() as jobs:
            good = await jobs.submit(
                fetch, name="fetch", labels={"site": "example.org"}, retry=anyjob.Retry(3, delay=0.01)
            )
            bad = await jobs.submit(broken, {"report": "q3"}, name="report")
            await jobs.wait(good.id)
            await jobs.wait(bad.id)


def show(span: ReadableSpan, children: dict[int | None, list[ReadableSpan]], depth: int = 0) -> None:
    """Print *span* and, indented below it, its children."""
    assert span.start_time is not None
    assert span.end_time is not None
    assert span.context is not None
    took = (span.end_time - span.start_time) / 1e6
    status = span.status.status_code.name
    attributes = span.attributes or {}
    labels = {key: value for key, value in attributes.items() if key.startswith("anyjob.job.label.")}
    print(f"{'    ' * depth + span.name:<28} {took:8.2f} ms  {status:<5} {labels or ''}")
    for child in children.get(span.context.span_id, []):
        show(child, children, depth + 1)


if __name__ == "__main__":
    anyio.run(main)
    spans = sorted(exporter.get_finished_spans(), key=lambda span: span.start_time or 0)
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        children.setdefault(None if span.parent is None else span.parent.span_id, []).append(span)
    for root in children[None]:
        show(root, children)
