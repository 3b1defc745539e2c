import itertools
import threading
import uuid

import pytest

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


def test_string_and_value_ids_agree() -> None:
    from anyjob._ids import format_id, new_id_value

    for _ in range(2000):  # crosses milliseconds; ids from both functions interleave in order
        by_value = format_id(new_id_value())
        as_string = new_id()
        assert by_value < as_string
        assert uuid.UUID(as_string).version == 7
        assert uuid.UUID(as_string).variant == uuid.RFC_4122
        assert by_value[:15] <= as_string[:15]  # the millisecond never goes back
        if by_value[:14] == as_string[:14]:  # same millisecond: same random low bits, next counter
            assert by_value[-8:] == as_string[-8:]
            assert uuid.UUID(as_string).int - uuid.UUID(by_value).int == 1 << 32


def test_counter_overflow_moves_to_the_next_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    from anyjob import _ids

    first = new_id()
    monkeypatch.setattr(_ids, "_counter", _ids._COUNTER_MAX)
    second = new_id()
    assert second > first
    assert uuid.UUID(second).int >> 80 > uuid.UUID(first).int >> 80


def test_formatting_in_parts_carries_into_the_cached_head(monkeypatch: pytest.MonkeyPatch) -> None:
    from anyjob import _ids

    new_id()
    monkeypatch.setattr(_ids.time, "time_ns", lambda: _ids._last_ms * 1_000_000)  # one frozen millisecond
    _ids._counter = (_ids._counter | 0xFFFF) + 0xFFFF  # forward, to two ids before the low 16 bits wrap
    _ids._head = _ids._format_head()
    ids = [new_id() for _ in range(4)]
    assert ids == sorted(ids)
    values = [uuid.UUID(i).int for i in ids]
    assert [b - a for a, b in itertools.pairwise(values)] == [1 << 32] * 3
