"""Prometheus metrics of anyjob's jobs, through the hook registry (``pip install 'anyjob[prometheus]'``).

::

    from anyjob import instrumentation
    from anyjob.instrumentation import prometheus

    instrumentation.set_hooks([*instrumentation.get_hooks(), prometheus.hook()])

The metrics, each labelled with the job's name (``job_name``; not ``job``, the label
Prometheus gives its scrape targets):

* ``anyjob_jobs_total{job_name, state}``: jobs that ended, by final state
  (``succeeded``, ``failed``, ``canceled``);
* ``anyjob_job_duration_seconds{job_name, state}``: a histogram of how long those
  runs took, every attempt and the waits between them included;
* ``anyjob_jobs_active{job_name}``: jobs running now;
* ``anyjob_job_retries_total{job_name}``: attempts that failed and were retried.

A job's name is a label value: keep names few (a function's name, not one per item;
put what varies in the job's labels or params), as Prometheus asks of every label.
Jobs canceled before they started never ran, and are not counted.
"""

from __future__ import annotations

import itertools
import math
import weakref
from collections.abc import Sequence
from typing import Final, final

import attrs

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without the extra
    msg = "anyjob.instrumentation.prometheus needs prometheus-client: pip install 'anyjob[prometheus]'"
    raise ImportError(msg) from exc

from anyjob.instrumentation._hooks import (
    JOB_CANCELED,
    JOB_FAILED,
    JOB_STARTED,
    JOB_SUCCEEDED,
    RETRY_SCHEDULED,
    HookEvent,
)

__all__ = ["DEFAULT_BUCKETS", "PrometheusHook", "hook"]

DEFAULT_BUCKETS: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
"""The duration histogram's bucket bounds, in seconds: from 10 ms to an hour (jobs run
longer than the requests ``prometheus_client``'s own default is made for)."""

_ENDS: Final = {JOB_SUCCEEDED: "succeeded", JOB_FAILED: "failed", JOB_CANCELED: "canceled"}

#: The hook made for each registry: its metrics can be registered there only once.
_MADE: Final[weakref.WeakKeyDictionary[CollectorRegistry, PrometheusHook]] = weakref.WeakKeyDictionary()


def hook(
    registry: CollectorRegistry | None = None, *, buckets: Sequence[float] = DEFAULT_BUCKETS
) -> PrometheusHook:
    """A hook that keeps anyjob's metrics in *registry* (see the module).

    Args:
        registry: Where the metrics are registered; by default ``prometheus_client``'s
            global ``REGISTRY`` (what ``start_http_server`` and ``make_asgi_app`` serve).
        buckets: The duration histogram's bucket bounds in seconds, increasing (``+Inf``
            is added).

    Returns:
        The hook; asked again for the same registry, the same hook (its metrics are
        registered there once).

    Raises:
        TypeError: *registry* is not a ``CollectorRegistry``.
        ValueError: *buckets* are not increasing positive numbers, or differ from those of
            the hook already made for *registry*.
    """
    target = REGISTRY if registry is None else registry
    if not isinstance(target, CollectorRegistry):
        msg = f"registry must be a prometheus_client.CollectorRegistry, not {type(target).__name__}"
        raise TypeError(msg)
    bounds = _check_buckets(buckets)
    made = _MADE.get(target)
    if made is not None:
        if made.buckets != bounds:
            msg = (
                f"anyjob's metrics are already registered in {target!r} with buckets {made.buckets}, "
                f"not {bounds}: reuse that hook, or pass another CollectorRegistry"
            )
            raise ValueError(msg)
        return made
    made = _MADE[target] = PrometheusHook(target, bounds)
    return made


def _check_buckets(buckets: Sequence[float]) -> tuple[float, ...]:
    try:
        bounds = tuple(float(bound) for bound in buckets if bound != math.inf)
    except (TypeError, ValueError):
        msg = f"buckets must be numbers of seconds, got {buckets!r}"
        raise TypeError(msg) from None
    if not bounds or bounds[0] <= 0 or any(b <= a for a, b in itertools.pairwise(bounds)):
        msg = f"buckets must be positive and increasing, got {buckets!r}"
        raise ValueError(msg)
    if any(math.isnan(bound) for bound in bounds):
        msg = f"buckets must not be NaN, got {buckets!r}"
        raise ValueError(msg)
    return bounds


@final
@attrs.define(eq=False, init=False)
class PrometheusHook:
    """The hook :func:`hook` makes, holding the metrics it registered (make it with :func:`hook`).

    It looks up the metric of each job name (and state) once and keeps it: do not
    ``remove()`` or ``clear()`` the label sets of these metrics, or their counts stop
    showing.

    Attributes:
        registry: Where its metrics are registered.
        buckets: The duration histogram's bucket bounds (seconds, without ``+Inf``).
        jobs: ``anyjob_jobs_total``, a counter by ``job_name`` and ``state``.
        durations: ``anyjob_job_duration_seconds``, a histogram by ``job_name`` and ``state``.
        active: ``anyjob_jobs_active``, a gauge by ``job_name``.
        retries: ``anyjob_job_retries_total``, a counter by ``job_name``.
    """

    registry: CollectorRegistry
    buckets: tuple[float, ...]
    jobs: Counter
    durations: Histogram
    active: Gauge
    retries: Counter
    _running: dict[str, str]  # the id of every job running now -> its name, as it started
    # The metrics of each label set, once looked up (``labels()`` costs more than the update).
    _active_of: dict[str, Gauge]
    _ends_of: dict[tuple[str, str], tuple[Counter, Histogram]]
    _retries_of: dict[str, Counter]

    def __init__(self, registry: CollectorRegistry, buckets: tuple[float, ...]) -> None:
        self.registry = registry
        self.buckets = buckets
        self.jobs = Counter(
            "anyjob_jobs", "Jobs that ended, by final state.", ["job_name", "state"], registry=registry
        )
        self.durations = Histogram(
            "anyjob_job_duration_seconds",
            "How long the jobs that ended ran (every attempt, and the waits between them).",
            ["job_name", "state"],
            registry=registry,
            buckets=buckets,
        )
        self.active = Gauge("anyjob_jobs_active", "Jobs running now.", ["job_name"], registry=registry)
        self.retries = Counter(
            "anyjob_job_retries", "Attempts that failed and were retried.", ["job_name"], registry=registry
        )
        self._running = {}
        self._active_of = {}
        self._ends_of = {}
        self._retries_of = {}

    def __call__(self, event: HookEvent) -> None:
        """Count *event* (the other events than a job's start, retry and end are ignored)."""
        name = event.name
        if name == JOB_STARTED:
            if event.job_id not in self._running:
                self._running[event.job_id] = event.job_name
                self._active(event.job_name).inc()
        elif name in _ENDS:
            state = _ENDS[name]
            started_as = self._running.pop(event.job_id, None)
            if started_as is not None:  # not when its start was not seen (the hook came later)
                self._active(started_as).dec()
            key = (event.job_name, state)
            ends = self._ends_of.get(key)
            if ends is None:
                ends = self._ends_of[key] = (self.jobs.labels(*key), self.durations.labels(*key))
            ends[0].inc()
            if event.duration is not None:
                ends[1].observe(event.duration)
        elif name == RETRY_SCHEDULED:
            retries = self._retries_of.get(event.job_name)
            if retries is None:
                retries = self._retries_of[event.job_name] = self.retries.labels(event.job_name)
            retries.inc()

    def _active(self, job_name: str) -> Gauge:
        gauge = self._active_of.get(job_name)
        if gauge is None:
            gauge = self._active_of[job_name] = self.active.labels(job_name)
        return gauge
