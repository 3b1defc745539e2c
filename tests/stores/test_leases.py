"""The Store contract of leases, crash recovery and shared work, over every store.

``renew_lease``/``release_lease`` say which managers are alive (by the store's clock),
``recover_lost`` resolves the jobs of those whose lease ran out, ``claim_waiting`` takes
waiting jobs for a manager. A lease "runs out" here by renewing it for 0.05 s and then
sleeping 0.3 s: generous, never a tight timing.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import time

import anyio
import pytest
from tests.stores.support import StoreKit, changes_until, record

from anyjob import State
from anyjob._kinds import EXTERNAL
from anyjob.stores import JobQuery, MemoryStore, PostgresStore, SQLiteStore, Store, StoreChange
from conftest import POSTGRES_DSN

pytestmark = pytest.mark.anyio

_OLD = 1_700_000_000.0  # long due: support.record()'s default scheduled
_LOST_ERROR = "its manager stopped renewing its lease (lost)"
#: How far the store's clock may be from this process's (the same machine: far less).
_CLOCK_SLACK = 5.0


async def _run_out(store: Store, *origins: str) -> None:
    """Give each of *origins* a lease, and wait until it has run out."""
    for origin in origins:
        await store.renew_lease(origin, 0.05)
    await anyio.sleep(0.3)


async def _owners(store: Store) -> dict[str, tuple[State, str]]:
    return {
        info.id: (info.state, copy.owner)
        for info in await store.query(JobQuery(limit=1000))
        if (copy := await store.get_record(info.id)) is not None
    }


def _check_index(store: Store) -> None:
    """A MemoryStore's counters and indexes (also behind a DelegatingStore) still hold."""
    inner = getattr(store, "inner", store)
    if isinstance(inner, MemoryStore):
        inner._index.check()


def _near_now(value: float | None) -> bool:
    return value is not None and abs(value - time.time()) < _CLOCK_SLACK


# -- leases and recover_lost ----------------------------------------------------------------


async def test_a_renewed_lease_stays_alive(kit: StoreKit) -> None:
    store = kit.store()
    await store.insert(record("running", owner="b", state=State.RUNNING, started=1.0))
    await store.insert(record("waiting", owner="b", scheduled=time.time() - 0.5))
    await _run_out(store, "b")
    await store.renew_lease("b", 60.0)  # renewed after it ran out: alive again
    other = kit.new()
    assert await other.recover_lost(origin="a", resumable=["fn"]) == []
    assert await other.claim_waiting(["fn"], origin="a", limit=10, grace=30.0) == []
    assert await _owners(store) == {"running": (State.RUNNING, "b"), "waiting": (State.CREATED, "b")}


async def test_an_expired_lease_resolves_its_managers_jobs(kit: StoreKit) -> None:
    store = kit.store()
    ran = {"started": _OLD + 1, "progress": 0.5, "message": "half", "result": [1], "updated": _OLD + 2}
    for job_id, fields in {
        "resumable": {"state": State.RUNNING, "attempts": 2, "traceback": "tb", **ran},
        "not-resumable": {"state": State.RUNNING, "function": "other", "started": _OLD + 1},
        "asked": {"state": State.RUNNING, "cancel_requested": True, "started": _OLD + 1},
        "canceling": {"state": State.CANCELING, "cancel_requested": True, "started": _OLD + 1},
        "waiting": {"state": State.CREATED},
        "done": {"state": State.SUCCEEDED, "started": _OLD, "ended": _OLD + 1},
    }.items():
        await store.insert(record(job_id, owner="b", **fields))
    await store.insert(record("mine", owner="a", state=State.RUNNING, started=_OLD))
    await store.insert(record("external", owner=EXTERNAL, function=EXTERNAL, state=State.RUNNING))
    await store.insert(record("never-leased", owner="c", state=State.RUNNING, started=_OLD))
    await store.insert(record("never-leased-waiting", owner="c"))
    before = await store.statistics()
    await _run_out(store, "a", "b")  # a's own lease ran out too: it never counts for a
    changed = await kit.new().recover_lost(origin="a", resumable=frozenset({"fn"}))
    assert sorted(changed) == ["asked", "canceling", "not-resumable", "resumable"]

    resumed = await store.get_record("resumable")
    assert resumed is not None
    assert (resumed.state, resumed.owner, resumed.attempts, resumed.cancel_requested) == (
        State.CREATED,
        "",
        2,
        False,
    )
    assert _near_now(resumed.scheduled)
    cleared = (resumed.started, resumed.ended, resumed.message, resumed.result, resumed.error)
    assert cleared == (None, None, None, None, None)
    assert (resumed.progress, resumed.error_type, resumed.traceback, resumed.updated) == (
        0.0,
        None,
        None,
        None,
    )
    failed = await store.get_record("not-resumable")
    assert failed is not None
    assert (failed.state, failed.error_type, failed.error, failed.owner, failed.started) == (
        State.FAILED,
        "JobLostError",
        _LOST_ERROR,
        "b",
        _OLD + 1,
    )
    assert _near_now(failed.ended)
    for job_id in ("asked", "canceling"):
        canceled = await store.get_record(job_id)
        assert canceled is not None
        assert (canceled.state, canceled.error_type) == (State.CANCELED, None)
        assert _near_now(canceled.ended)
    assert await _owners(store) == {
        "resumable": (State.CREATED, ""),
        "not-resumable": (State.FAILED, "b"),
        "asked": (State.CANCELED, "b"),
        "canceling": (State.CANCELED, "b"),
        "waiting": (State.CREATED, ""),  # left waiting for anyone
        "done": (State.SUCCEEDED, "b"),
        "mine": (State.RUNNING, "a"),
        "external": (State.RUNNING, EXTERNAL),
        "never-leased": (State.RUNNING, "c"),
        "never-leased-waiting": (State.CREATED, "c"),
    }
    done = await store.get_record("done")
    assert done is not None
    assert done.ended == _OLD + 1

    _check_index(store)
    stats = await store.statistics()
    assert stats.total == before.total
    assert (before.by_state[State.RUNNING], stats.by_state[State.RUNNING]) == (6, 3)
    assert (stats.by_state[State.CREATED], stats.by_state[State.CANCELING]) == (3, 0)
    assert (stats.by_state[State.FAILED], stats.by_state[State.CANCELED]) == (1, 2)
    assert stats.active == 6
    assert (await store.statistics(name="job")).by_state[State.CANCELED] == 2
    waiting = {info.id for info in await store.query(JobQuery(states=frozenset({State.CREATED})))}
    assert waiting == {"resumable", "waiting", "never-leased-waiting"}

    # The lost lease is gone: nothing more to do. a's own lease is still there, expired:
    # another manager finds it lost.
    assert await store.recover_lost(origin="a", resumable=["fn"]) == []
    assert await kit.new().recover_lost(origin="d", resumable=[]) == ["mine"]
    mine = await store.get_record("mine")
    assert mine is not None
    assert (mine.state, mine.error_type) == (State.FAILED, "JobLostError")


async def test_recovery_reaches_other_origins_feeds(kit: StoreKit) -> None:
    store = kit.store()
    await store.open()
    feed = store.subscribe("b")  # the lost manager, should it come back
    await store.insert(record("running", owner="b", state=State.RUNNING, started=_OLD))
    await store.insert(record("waiting", owner="b"))
    await _run_out(store, "b")
    assert await kit.new().recover_lost(origin="a", resumable=[]) == ["running"]

    def both_told(seen: list[StoreChange]) -> bool:
        told = {c.job_id for c in seen if c.owner == "" or (c.info is not None and c.info.state.is_done)}
        return told == {"running", "waiting"}

    seen = await changes_until(feed, both_told)
    latest = {change.job_id: change for change in seen}
    running = latest["running"].info
    assert running is not None
    assert (running.state, running.error_type, running.error) == (State.FAILED, "JobLostError", _LOST_ERROR)
    assert running.ended_at is not None
    assert latest["waiting"].owner == ""
    assert latest["waiting"].info is not None
    assert latest["waiting"].info.state is State.CREATED
    feed.close()


async def test_a_released_lease_is_not_recovered_and_frees_its_waiting_jobs(kit: StoreKit) -> None:
    store = kit.store()
    await store.insert(record("running", owner="b", state=State.RUNNING, started=_OLD))
    await store.insert(record("waiting", owner="b", scheduled=time.time() - 0.5))
    await store.renew_lease("b", 60.0)
    assert await store.claim_waiting(["fn"], origin="a", limit=5, grace=30.0) == []  # b is alive
    await kit.new().release_lease("b")
    await store.release_lease("b")  # again: nothing to release
    await store.release_lease("never-had-one")
    await anyio.sleep(0.1)
    assert await store.recover_lost(origin="a", resumable=["fn"]) == []  # no lease ran out
    assert [taken.id for taken in await store.claim_waiting(["fn"], origin="a", limit=5, grace=30.0)] == [
        "waiting"
    ]
    assert await _owners(store) == {"running": (State.RUNNING, "b"), "waiting": (State.CREATED, "a")}


async def test_lease_arguments_are_checked(kit: StoreKit) -> None:
    store = kit.store()
    for origin in ("", EXTERNAL):
        with pytest.raises(ValueError, match="manager id"):
            await store.renew_lease(origin, 10.0)
    for lease in (0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="lease must be positive"):
            await store.renew_lease("a", lease)
    for wrong in ("10", True, None):
        with pytest.raises(TypeError, match="lease must be a number"):
            await store.renew_lease("a", wrong)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="limit must be an int"):
        await store.claim_waiting(["fn"], origin="a", limit=2.0, grace=1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="grace must be a number"):
        await store.claim_waiting(["fn"], origin="a", limit=2, grace="1")  # type: ignore[arg-type]
    for grace in (-1.0, math.nan):
        with pytest.raises(ValueError, match="grace must be zero or more"):
            await store.claim_waiting(["fn"], origin="a", limit=2, grace=grace)


# -- claim_waiting ----------------------------------------------------------------------------


async def test_claim_takes_the_highest_priority_then_the_oldest_due_first(kit: StoreKit) -> None:
    store = kit.store()
    for job_id, priority, scheduled in [
        ("low-old", 0, _OLD),
        ("high-new", 5, _OLD + 20),
        ("high-old", 5, _OLD + 10),
        ("mid-b", 1, _OLD + 30),
        ("mid-a", 1, _OLD + 30),  # same priority and due time: by id
        ("low-new", 0, _OLD + 40),
    ]:
        await store.insert(record(job_id, owner="", priority=priority, scheduled=scheduled))
    await store.renew_lease("a", 60.0)
    await store.renew_lease("b", 60.0)
    other = kit.new()
    first = await other.claim_waiting(["fn"], origin="a", limit=3, grace=math.inf)
    assert [taken.id for taken in first] == ["high-old", "high-new", "mid-a"]
    assert {(taken.state, taken.owner) for taken in first} == {(State.CREATED, "a")}
    rest = await store.claim_waiting(["fn", "unused"], origin="b", limit=10, grace=math.inf)
    assert [taken.id for taken in rest] == ["mid-b", "low-old", "low-new"]
    assert await other.claim_waiting(["fn"], origin="c", limit=10, grace=math.inf) == []  # a, b alive
    owners = await _owners(store)
    by_a = {job_id for job_id, (_, owner) in owners.items() if owner == "a"}
    assert by_a == {"high-old", "high-new", "mid-a"}
    assert {state for state, _ in owners.values()} == {State.CREATED}
    _check_index(store)
    assert (await store.statistics()).by_state[State.CREATED] == 6


async def test_claim_takes_only_due_waiting_records_of_its_functions(kit: StoreKit) -> None:
    store = kit.store()
    await store.insert(record("take", owner=""))
    await store.insert(record("other-function", owner="", function="other"))
    await store.insert(record("future", owner="", scheduled=time.time() + 3600))
    await store.insert(record("running", owner="", state=State.RUNNING))
    await store.insert(record("done", owner="", state=State.SUCCEEDED, ended=_OLD))
    await store.insert(record("external", owner=EXTERNAL, function="fn"))
    await store.insert(record("external-fn", owner=EXTERNAL, function=EXTERNAL))
    await store.insert(record("mine", owner="a"))  # its own already, long due
    assert await store.claim_waiting([], origin="a", limit=5, grace=0.0) == []
    assert await store.claim_waiting(["fn"], origin="a", limit=0, grace=0.0) == []
    taken = await kit.new().claim_waiting(["fn", EXTERNAL], origin="a", limit=50, grace=0.0)
    assert [record.id for record in taken] == ["take"]
    assert await store.claim_waiting(["fn", EXTERNAL], origin="a", limit=50, grace=0.0) == []
    owners = await _owners(store)
    assert owners["other-function"] == owners["future"] == (State.CREATED, "")
    assert (owners["external"], owners["mine"]) == ((State.CREATED, EXTERNAL), (State.CREATED, "a"))


async def test_a_live_owners_jobs_are_shared_only_past_the_grace(kit: StoreKit) -> None:
    store = kit.store()
    now = time.time()
    await store.insert(record("alive-recent", owner="alive", scheduled=now - 0.5))
    await store.insert(record("alive-due-long", owner="alive", scheduled=now - 100))
    await store.insert(record("lost-recent", owner="lost", scheduled=now - 0.5))
    await store.insert(record("never-leased-recent", owner="never", scheduled=now - 0.5))
    await store.insert(record("nobodys-recent", owner="", scheduled=now - 0.5))
    for origin in ("alive", "a", "b", "c"):
        await store.renew_lease(origin, 60.0)
    await _run_out(store, "lost")
    other = kit.new()
    not_shared = await other.claim_waiting(["fn"], origin="a", limit=10, grace=math.inf)
    not_shared_ids = sorted(taken.id for taken in not_shared)
    assert not_shared_ids == ["lost-recent", "never-leased-recent", "nobodys-recent"]
    past_grace = await other.claim_waiting(["fn"], origin="b", limit=10, grace=30.0)
    assert [taken.id for taken in past_grace] == ["alive-due-long"]
    assert await other.claim_waiting(["fn"], origin="c", limit=10, grace=300.0) == []  # all alive, recent
    no_grace = await store.claim_waiting(["fn"], origin="c", limit=10, grace=0.0)
    assert len(no_grace) == 5
    assert {owner for _, owner in (await _owners(store)).values()} == {"c"}


async def test_claims_reach_other_origins_feeds(kit: StoreKit) -> None:
    store = kit.store()
    await store.open()
    feed = store.subscribe("b")
    await store.insert(record("j1", owner="b"), origin="b")
    assert [taken.id for taken in await kit.new().claim_waiting(["fn"], origin="a", limit=1, grace=0.0)] == [
        "j1"
    ]
    seen = await changes_until(feed, lambda seen: any(c.owner == "a" for c in seen))
    assert (seen[-1].job_id, seen[-1].cancel_requested) == ("j1", False)
    assert seen[-1].info is not None
    assert seen[-1].info.state is State.CREATED
    feed.close()


async def test_claimed_records_are_copies_except_a_memory_stores_own(kit: StoreKit) -> None:
    store = kit.store()
    await store.insert(record("j1", owner="", params={"rows": [1]}))
    [taken] = await store.claim_waiting(["fn"], origin="a", limit=1, grace=0.0)
    if isinstance(store, MemoryStore):
        assert taken is store.record_now("j1")  # shared with the in-process manager
        return
    taken.params["rows"].append(2)
    taken.state = State.FAILED
    again = await store.get_record("j1")
    assert again is not None
    assert (again.params, again.state, again.owner) == ({"rows": [1]}, State.CREATED, "a")


async def test_concurrent_claims_take_each_record_exactly_once(kit: StoreKit) -> None:
    store = kit.store()
    count = 150 if kit.durable else 400
    for i in range(count):
        await store.insert(record(f"j{i:04}", owner="", priority=i % 3))
    stores = [store, *(kit.new() for _ in range(3))]
    got: dict[str, list[str]] = {}

    async def claimer(index: int, mine: Store) -> None:
        origin = f"m{index}"
        got[origin] = []
        while taken := await mine.claim_waiting(["fn"], origin=origin, limit=7, grace=math.inf):
            got[origin].extend(taken.id for taken in taken)
            await anyio.sleep(0.001)  # a manager starting them: the others get their turn

    for index, mine in enumerate(stores):  # connected, and alive: what it took stays its own
        await mine.renew_lease(f"m{index}", 60.0)
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for index, mine in enumerate(stores):
                tg.start_soon(claimer, index, mine)
    everything = [job_id for ids in got.values() for job_id in ids]
    assert len(everything) == len(set(everything)) == count
    owners = await _owners(store)
    assert all(owners[job_id][1] == origin for origin, ids in got.items() for job_id in ids)
    if kit.durable:
        assert sum(bool(ids) for ids in got.values()) >= 2  # they did run side by side


async def test_an_undecodable_waiting_row_is_not_taken(kit: StoreKit) -> None:
    if not kit.durable:
        pytest.skip("only stored rows can be undecodable")
    store = kit.store()
    await store.insert(record("bad", owner="", priority=9))
    await store.insert(record("good", owner=""))
    sql, params = "UPDATE anyjob_jobs SET params = ? WHERE id = ?", ("{not json", "bad")
    if isinstance(store, SQLiteStore):
        with contextlib.closing(sqlite3.connect(store.path, isolation_level=None)) as conn:
            conn.execute(sql, params)
    else:
        import psycopg

        assert isinstance(store, PostgresStore)
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{store.schema}"')
            conn.execute(sql.replace("?", "%s"), params)
    await store.renew_lease("a", 60.0)
    with pytest.warns(RuntimeWarning, match="'bad'"):
        taken = await store.claim_waiting(["fn"], origin="a", limit=5, grace=math.inf)
    assert [record.id for record in taken] == ["good"]
    with pytest.warns(RuntimeWarning, match="'bad'"):  # left as it was, for its get() to tell
        assert await store.claim_waiting(["fn"], origin="b", limit=5, grace=math.inf) == []
