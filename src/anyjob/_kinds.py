"""Jobs no worker of a manager runs, and how their records say so.

* An **external** job is created by ``JobManager.create`` and reported into by id from any
  manager over the store (``update``, ``complete``, ``fail``): no manager owns it, so its
  record's ``owner`` and ``function`` are both :data:`EXTERNAL`.
* A **tracked** block (``JobManager.track``) runs in its caller's task: the manager that
  tracks it owns it, and its record's ``function`` is :data:`TRACKED` (nothing to retry).

Neither marker is a valid manager id (a UUID) or a function key a registry makes (``register``
refuses them as names).
"""

from __future__ import annotations

from typing import Final

__all__ = ["EXTERNAL", "RESERVED", "TRACKED"]

#: ``owner`` and ``function`` of an external job's record.
EXTERNAL: Final = "<external>"
#: ``function`` of a tracked block's record.
TRACKED: Final = "<tracked>"
#: Names ``register`` refuses: no function may pose as one of these.
RESERVED: Final = frozenset({EXTERNAL, TRACKED})
