"""Instrumentation: hooks that receive every lifecycle event of every job.

By default one :class:`StructlogHook` logs the events: through
``structlog.get_logger("anyjob")`` once the application has configured structlog, and
until then through the standard library's ``logging.getLogger("anyjob")`` (anyjob
never configures either, and never prints to stdout). Add your own hooks (metrics,
tracing) with :func:`set_hooks`, or silence anyjob with ``set_hooks([])``::

    from anyjob import instrumentation

    def count(event: instrumentation.HookEvent) -> None:
        if event.name == instrumentation.JOB_FAILED:
            failures.inc()

    instrumentation.set_hooks([*instrumentation.get_hooks(), count])

Two hooks ship as optional extras, each in a submodule of its own:
:mod:`anyjob.instrumentation.otel` (OpenTelemetry spans per job and per attempt,
``anyjob[otel]``) and :mod:`anyjob.instrumentation.prometheus` (Prometheus counters,
a duration histogram and a gauge of active jobs, ``anyjob[prometheus]``).
"""

from anyjob.instrumentation._hooks import CANCELED_ELSEWHERE as CANCELED_ELSEWHERE
from anyjob.instrumentation._hooks import JOB_CANCELED as JOB_CANCELED
from anyjob.instrumentation._hooks import JOB_FAILED as JOB_FAILED
from anyjob.instrumentation._hooks import JOB_STARTED as JOB_STARTED
from anyjob.instrumentation._hooks import JOB_SUCCEEDED as JOB_SUCCEEDED
from anyjob.instrumentation._hooks import RETRY_SCHEDULED as RETRY_SCHEDULED
from anyjob.instrumentation._hooks import SHUTDOWN_OVERDUE as SHUTDOWN_OVERDUE
from anyjob.instrumentation._hooks import Hook as Hook
from anyjob.instrumentation._hooks import HookEvent as HookEvent
from anyjob.instrumentation._hooks import SelectiveHook as SelectiveHook
from anyjob.instrumentation._hooks import StructlogHook as StructlogHook
from anyjob.instrumentation._hooks import get_hooks as get_hooks
from anyjob.instrumentation._hooks import reset_hooks as reset_hooks
from anyjob.instrumentation._hooks import set_hooks as set_hooks

__all__ = [
    "CANCELED_ELSEWHERE",
    "JOB_CANCELED",
    "JOB_FAILED",
    "JOB_STARTED",
    "JOB_SUCCEEDED",
    "RETRY_SCHEDULED",
    "SHUTDOWN_OVERDUE",
    "Hook",
    "HookEvent",
    "SelectiveHook",
    "StructlogHook",
    "get_hooks",
    "reset_hooks",
    "set_hooks",
]
