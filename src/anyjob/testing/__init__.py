"""Helpers for testing code that uses anyjob.

* :func:`set_testing` removes the waits between retries and the cooldowns (and
  can cap the number of attempts), like ``stamina.set_testing``.
* :func:`capture_events` records the instrumentation events instead of logging them.

Both change process-wide settings and restore the previous ones on exit.
"""

from anyjob.testing._helpers import TestingMode as TestingMode
from anyjob.testing._helpers import capture_events as capture_events
from anyjob.testing._helpers import get_testing as get_testing
from anyjob.testing._helpers import set_testing as set_testing

__all__ = ["TestingMode", "capture_events", "get_testing", "set_testing"]
