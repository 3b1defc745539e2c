"""anyjob: run, track and control jobs inside an async program (asyncio or trio, through anyio).

The building blocks:

* :class:`Job` runs one async function through the :class:`State` machine,
  with a :class:`Context` for progress and results.
* :class:`Executor` adds policies on top of a job: :class:`Retry`, per-attempt
  timeout, cooldown, once-only.
* :class:`JobManager` tracks many jobs by id: submit, status, wait, list, stats,
  cancel, retry, cleanup and live events, over a store (:mod:`anyjob.stores`).
"""

from anyjob._exceptions import AlreadySucceededError as AlreadySucceededError
from anyjob._exceptions import CooldownError as CooldownError
from anyjob._exceptions import JobCanceledError as JobCanceledError
from anyjob._exceptions import JobError as JobError
from anyjob._exceptions import JobLostError as JobLostError
from anyjob._exceptions import JobNotFoundError as JobNotFoundError
from anyjob._exceptions import JobStateError as JobStateError
from anyjob._exceptions import ManagerClosedError as ManagerClosedError
from anyjob._exceptions import StoreError as StoreError
from anyjob._executor import Executor as Executor
from anyjob._executor import ExecutorStats as ExecutorStats
from anyjob._job import Context as Context
from anyjob._job import Job as Job
from anyjob._job import JobStats as JobStats
from anyjob._job import wrap as wrap
from anyjob._manager import JobManager as JobManager
from anyjob._policy import Policy as Policy
from anyjob._policy import PolicyFunction as PolicyFunction
from anyjob._records import JobEvent as JobEvent
from anyjob._records import JobInfo as JobInfo
from anyjob._records import JobRef as JobRef
from anyjob._records import JobStatistics as JobStatistics
from anyjob._retry import Retry as Retry
from anyjob._state import State as State

__all__ = [
    "AlreadySucceededError",
    "Context",
    "CooldownError",
    "Executor",
    "ExecutorStats",
    "Job",
    "JobCanceledError",
    "JobError",
    "JobEvent",
    "JobInfo",
    "JobLostError",
    "JobManager",
    "JobNotFoundError",
    "JobRef",
    "JobStateError",
    "JobStatistics",
    "JobStats",
    "ManagerClosedError",
    "Policy",
    "PolicyFunction",
    "Retry",
    "State",
    "StoreError",
    "wrap",
]
