"""anyjob.instrumentation.prometheus: metrics read back from a private CollectorRegistry."""

from __future__ import annotations

import subprocess
import sys

import anyio
import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from anyjob import Context, Executor, Job, JobManager, Retry, State, instrumentation
from anyjob.instrumentation import prometheus

pytestmark = pytest.mark.anyio


@pytest.fixture
def registry() -> CollectorRegistry:
    made = CollectorRegistry()
    instrumentation.set_hooks([*instrumentation.get_hooks(), prometheus.hook(made)])
    return made  # the autouse fixture of conftest.py restores the default hooks


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


async def ok(ctx: Context) -> int:
    return 1


async def bad(ctx: Context) -> None:
    msg = "nope"
    raise ValueError(msg)


async def test_jobs_are_counted_by_name_and_final_state(registry: CollectorRegistry) -> None:
    await Job(ok, name="good").run()
    await Job(ok, name="good").run()
    await Job(bad, name="broken").run()
    started = anyio.Event()

    async def slow(ctx: Context) -> None:
        started.set()
        await anyio.sleep_forever()

    canceled = Job(slow, name="slow")
    async with anyio.create_task_group() as tg:
        tg.start_soon(canceled.run)
        await started.wait()
        canceled.cancel()
    assert value(registry, "anyjob_jobs_total", job_name="good", state="succeeded") == 2
    assert value(registry, "anyjob_jobs_total", job_name="good", state="failed") == 0
    assert value(registry, "anyjob_jobs_total", job_name="broken", state="failed") == 1
    assert value(registry, "anyjob_jobs_total", job_name="slow", state="canceled") == 1
    assert value(registry, "anyjob_job_duration_seconds_count", job_name="good", state="succeeded") == 2
    assert value(registry, "anyjob_job_duration_seconds_sum", job_name="good", state="succeeded") >= 0
    assert value(registry, "anyjob_job_duration_seconds_count", job_name="slow", state="canceled") == 1
    for name in ("good", "broken", "slow"):
        assert value(registry, "anyjob_jobs_active", job_name=name) == 0


async def test_the_gauge_counts_the_jobs_running_now(registry: CollectorRegistry) -> None:
    release = anyio.Event()
    running = 0
    all_in = anyio.Event()

    async def held(ctx: Context) -> None:
        nonlocal running
        running += 1
        if running == 3:
            all_in.set()
        await release.wait()

    async with JobManager() as jobs:
        refs = [await jobs.submit(held, name="held") for _ in range(3)]
        await all_in.wait()
        assert value(registry, "anyjob_jobs_active", job_name="held") == 3
        release.set()
        for ref in refs:
            await jobs.wait(ref.id)
    assert value(registry, "anyjob_jobs_active", job_name="held") == 0
    assert value(registry, "anyjob_jobs_total", job_name="held", state="succeeded") == 3


async def test_retries_are_counted_and_the_job_once(registry: CollectorRegistry) -> None:
    executor = Executor(Job(bad, name="flaky"), retry=Retry(3, delay=0))
    with pytest.raises(ValueError, match="nope"):
        await executor.start()
    assert value(registry, "anyjob_job_retries_total", job_name="flaky") == 2
    assert value(registry, "anyjob_jobs_total", job_name="flaky", state="failed") == 1
    assert value(registry, "anyjob_jobs_active", job_name="flaky") == 0


async def test_durations_fall_in_the_buckets_asked_for() -> None:
    registry = CollectorRegistry()
    made = prometheus.hook(registry, buckets=[0.5, 1000])
    assert made.buckets == (0.5, 1000.0)
    made(
        instrumentation.HookEvent(
            name=instrumentation.JOB_SUCCEEDED,
            job_id="j",
            job_name="timed",
            labels={},
            state=State.SUCCEEDED,
            duration=2.0,
        )
    )
    labels = {"job_name": "timed", "state": "succeeded"}
    assert registry.get_sample_value("anyjob_job_duration_seconds_bucket", {**labels, "le": "0.5"}) == 0
    assert registry.get_sample_value("anyjob_job_duration_seconds_bucket", {**labels, "le": "1000.0"}) == 1
    assert registry.get_sample_value("anyjob_job_duration_seconds_sum", labels) == 2.0
    # An end whose start this hook never saw is counted, and the gauge is left alone.
    assert value(registry, "anyjob_jobs_active", job_name="timed") == 0


def test_a_job_started_twice_without_an_end_is_one_active_job() -> None:
    registry = CollectorRegistry()
    made = prometheus.hook(registry)
    event = instrumentation.HookEvent(
        name=instrumentation.JOB_STARTED, job_id="j", job_name="twice", labels={}, state=State.RUNNING
    )
    made(event)
    made(event)
    assert value(registry, "anyjob_jobs_active", job_name="twice") == 1


def test_one_hook_per_registry() -> None:
    registry = CollectorRegistry()
    first = prometheus.hook(registry)
    assert prometheus.hook(registry) is first  # not "Duplicated timeseries in CollectorRegistry"
    with pytest.raises(ValueError, match="already registered"):
        prometheus.hook(registry, buckets=[1, 2])
    assert prometheus.hook(CollectorRegistry()) is not first


def test_the_default_registry_is_prometheus_clients_global_one() -> None:
    made = prometheus.hook()
    assert made.registry is REGISTRY
    assert prometheus.hook() is made
    assert b"anyjob_jobs_active" in generate_latest(REGISTRY)


@pytest.mark.parametrize(
    ("buckets", "error"),
    [
        ([], ValueError),
        ([2, 1], ValueError),
        ([0, 1], ValueError),
        (["x"], TypeError),
        ([float("nan")], ValueError),
    ],
)
def test_bad_buckets_are_refused(buckets: list[object], error: type[Exception]) -> None:
    with pytest.raises(error, match="buckets"):
        prometheus.hook(CollectorRegistry(), buckets=buckets)  # type: ignore[arg-type]


def test_a_registry_must_be_a_collector_registry() -> None:
    with pytest.raises(TypeError, match="CollectorRegistry"):
        prometheus.hook({})  # type: ignore[arg-type]


def test_without_prometheus_client_the_import_says_which_extra_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['prometheus_client'] = None\n"
        "try:\n"
        "    import anyjob.instrumentation.prometheus\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'anyjob[prometheus]'" in result.stdout
