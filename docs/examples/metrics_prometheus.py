"""Prometheus metrics of a manager's jobs: counts by name and final state, durations, active jobs.

Run it: ``python docs/examples/metrics_prometheus.py`` (needs ``anyjob[prometheus]``). It
prints anyjob's metrics as Prometheus scrapes them. A service would serve them instead:
``prometheus_client.start_http_server(9100)``, or mount ``prometheus_client.make_asgi_app()``
in its web application.
"""

from __future__ import annotations

import anyio
from prometheus_client import CollectorRegistry, generate_latest

import anyjob
from anyjob import instrumentation
from anyjob.instrumentation import prometheus

# A registry of its own keeps the example's output short; by default prometheus.hook()
# registers in prometheus_client's global REGISTRY, the one start_http_server serves.
registry = CollectorRegistry()


async def resize(ctx: anyjob.Context) -> None:
    """One in four images is corrupt; corrupt images fail their first try, then every retry."""
    await anyio.sleep(0.01)
    if ctx.params % 4 == 3:
        msg = f"image {ctx.params} is corrupt"
        raise ValueError(msg)


async def peek(ctx: anyjob.Context) -> None:
    """While a job runs, the gauge counts it."""
    print("resize jobs running:", registry.get_sample_value("anyjob_jobs_active", {"job_name": "resize"}))


async def main() -> None:
    instrumentation.set_hooks([*instrumentation.get_hooks(), prometheus.hook(registry)])
    async with anyjob.JobManager(max_concurrency=4) as jobs:
        refs = [await jobs.submit(resize, i, name="resize", retry=anyjob.Retry(2, delay=0)) for i in range(8)]
        await jobs.wait((await jobs.submit(peek, name="peek")).id)
        async for _ in jobs.as_completed([ref.id for ref in refs]):
            pass


if __name__ == "__main__":
    anyio.run(main)
    for line in generate_latest(registry).decode().splitlines():
        if not line.startswith("#") and "_bucket" not in line and "_created" not in line:
            print(line)
