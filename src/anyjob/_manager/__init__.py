"""The JobManager and the parts it is made of (see docs/architecture.md).

======================  =============================================================
module                  responsibility
======================  =============================================================
``_jobmanager``         :class:`JobManager`: the public API and the lifecycle
``_queries``            its query methods (a base class): get, status, wait, list, stats
``_outside``            its methods for work outside its workers (a base class)
``_track``              ``track()``: a block of the caller's code as a live job
``_external``           external jobs: reports by id, how often to look for silent ones
``_upkeep``             leases, lost managers' jobs, silent jobs, shared waiting jobs
``_intake``             the record a submit makes of its arguments
``_control``            cancel, retry, delete by id
``_completion``         ``as_completed``
``_specs``              the spec registry: what to run for a submission; label interning
``_queues``             the ready queue (priority, FIFO) and the delayed queue
``_pool``               worker tasks; runs a job in place or through an Executor
``_recorder``           the only writer of record state; retires a finished job
``_sink``               how changes reach the store, chosen once: in place, or batched
``_batch_sink``         batched changes, claims and (group commit) new records
``_batch``              what waits for a batch's write: claims, new records, answers
``_follower``           other managers' changes, as one decision table
``_waiters``            ``wait`` calls by job id
``_publisher``          ``events()`` streams
``_entry``              one live job, and one worker
======================  =============================================================
"""

from anyjob._manager._jobmanager import JobManager as JobManager
from anyjob._manager._jobmanager import ManagerStatistics as ManagerStatistics

__all__ = ["JobManager", "ManagerStatistics"]
