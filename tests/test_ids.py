import threading
import uuid

import anyjob
from anyjob._ids import new_id


def test_default_ids_are_uuid7() -> None:
    value = uuid.UUID(anyjob.Job(anyjob.wrap(_noop)).id)
    assert value.version == 7
    assert value.variant == uuid.RFC_4122


def test_ids_strictly_increase_in_creation_order() -> None:
    ids = [new_id() for _ in range(50_000)]  # many share a millisecond
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_job_ids_are_formatted_lazily_but_ordered_by_creation() -> None:
    jobs = [anyjob.Job(anyjob.wrap(_noop)) for _ in range(1000)]
    ids = [job.id for job in reversed(jobs)]  # format in reverse order
    assert list(reversed(ids)) == sorted(ids)
    assert jobs[0].id is jobs[0].id  # formatted once


def test_ids_unique_across_threads() -> None:
    out: list[list[str]] = [[] for _ in range(4)]

    def make(bucket: list[str]) -> None:
        bucket.extend(new_id() for _ in range(5000))

    threads = [threading.Thread(target=make, args=(bucket,)) for bucket in out]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for bucket in out for i in bucket]
    assert len(set(every)) == len(every)
    for bucket in out:
        assert bucket == sorted(bucket)


async def _noop() -> None:
    return None
