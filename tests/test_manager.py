from __future__ import annotations

import contextvars
import gc
import itertools
import json
import pathlib
import uuid
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import anyjob
from anyjob import (
    Context,
    JobError,
    JobManager,
    JobNotFoundError,
    JobStateError,
    Retry,
    State,
    instrumentation,
)
from anyjob.stores import MemoryStore, PostgresStore, SQLiteStore

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _quiet() -> None:
    instrumentation.set_hooks([])


@pytest.fixture(autouse=True, params=["memory", "protocol", "sqlite", "postgres"])
def store_kind(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> Iterator[str]:
    """Every test runs over the default MemoryStore (in-process fast path), over a store
    reached only through the async Store protocol (batched, coalesced writes), over an
    SQLiteStore (a database file per store) and over a PostgresStore (a schema per store)."""
    from anyjob import _manager

    schemas: list[str] = []
    opened: list[SQLiteStore | PostgresStore] = []  # closed after the test (their connections)
    if request.param == "postgres":
        from conftest import POSTGRES_DSN, postgres_unavailable

        reason = postgres_unavailable()
        if reason:
            pytest.skip(reason)

        def postgres_store() -> PostgresStore:
            schemas.append(f"anyjob_test_{uuid.uuid4().hex[:16]}")
            opened.append(PostgresStore(POSTGRES_DSN, schema=schemas[-1], poll_interval=0.02))
            return opened[-1]

        monkeypatch.setattr(_manager, "_default_store", postgres_store)
        monkeypatch.setattr(_this_module(), "MemoryStore", postgres_store)

    if request.param == "protocol":
        from conftest import DelegatingStore

        monkeypatch.setattr(_manager, "_default_store", DelegatingStore)
        monkeypatch.setattr(_this_module(), "MemoryStore", DelegatingStore)
    elif request.param == "sqlite":
        files = itertools.count()

        def sqlite_store() -> SQLiteStore:
            opened.append(SQLiteStore(tmp_path / f"jobs-{next(files)}.db", poll_interval=0.02))
            return opened[-1]

        monkeypatch.setattr(_manager, "_default_store", sqlite_store)
        monkeypatch.setattr(_this_module(), "MemoryStore", sqlite_store)
    yield request.param
    for store in opened:
        store.close()
    if schemas:
        from conftest import drop_postgres_schemas

        drop_postgres_schemas(schemas)


def _this_module() -> Any:
    import sys

    return sys.modules[__name__]


class Gates:
    """Job functions that block until the test opens their gate (by params)."""

    def __init__(self) -> None:
        self.entered: dict[Any, anyio.Event] = {}
        self.release: dict[Any, anyio.Event] = {}
        self.order: list[Any] = []
        self.running = 0
        self.max_running = 0

    def _events(self, key: Any) -> tuple[anyio.Event, anyio.Event]:
        return (
            self.entered.setdefault(key, anyio.Event()),
            self.release.setdefault(key, anyio.Event()),
        )

    async def __call__(self, ctx: Context) -> Any:
        entered, release = self._events(ctx.params)
        self.order.append(ctx.params)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            entered.set()
            await release.wait()
        finally:
            self.running -= 1
        return ctx.params

    async def wait_entered(self, key: Any) -> None:
        await self._events(key)[0].wait()

    def open(self, key: Any) -> None:
        self._events(key)[1].set()


async def ok(ctx: Context) -> Any:
    return ctx.params


async def boom(ctx: Context) -> None:
    msg = "boom"
    raise ValueError(msg)


# -- submit, get, status, wait ----------------------------------------------------------


async def test_submit_get_status_wait() -> None:
    async with JobManager() as jobs:
        ref = await jobs.submit(ok, {"x": 1}, name="adder", labels={"project": "p"})
        assert isinstance(ref, anyjob.JobRef)
        assert ref.name == "adder"
        assert ref.scheduled_at.tzinfo is not None
        info = await jobs.wait(ref.id)
        assert info is not None
        assert info.id == ref.id
        assert info.state is State.SUCCEEDED
        assert info.result == {"x": 1}
        assert info.params == {"x": 1}
        assert info.labels == {"project": "p"}
        assert info.attempts == 1
        assert info.error is None
        assert info.created_at <= info.started_at <= info.ended_at  # type: ignore[operator]
        assert info.duration is not None
        assert info.duration >= 0
        assert await jobs.status(ref.id) is State.SUCCEEDED
        assert await jobs.get(ref.id) == info


async def test_unknown_ids() -> None:
    async with JobManager() as jobs:
        assert await jobs.get("nope") is None
        assert await jobs.status("nope") is None
        assert await jobs.wait("nope", timeout=1) is None
        with pytest.raises(JobNotFoundError) as info:
            await jobs.cancel("nope")
        assert info.value.job_id == "nope"
        with pytest.raises(JobNotFoundError):
            await jobs.retry("nope")
        for call in (jobs.get, jobs.status, jobs.cancel):
            with pytest.raises(TypeError):
                await call(42)  # type: ignore[operator]


async def test_waiting_is_distinct_from_not_found() -> None:
    gates = Gates()
    async with JobManager(max_concurrency=1) as jobs:
        first = await jobs.submit(gates, "a")
        second = await jobs.submit(gates, "b")
        await gates.wait_entered("a")
        assert await jobs.status(first.id) is State.RUNNING
        assert await jobs.status(second.id) is State.CREATED
        gates.open("a")
        gates.open("b")


async def test_wait_timeout_returns_latest_info() -> None:
    gates = Gates()
    async with JobManager() as jobs:
        ref = await jobs.submit(gates, "slow")
        await gates.wait_entered("slow")
        info = await jobs.wait(ref.id, timeout=0.05)
        assert info is not None
        assert info.state is State.RUNNING
        gates.open("slow")
        done = await jobs.wait(ref.id, timeout=timedelta(seconds=10))
        assert done is not None
        assert done.state is State.SUCCEEDED


async def test_wait_is_woken_by_the_end_not_by_polling() -> None:
    gates = Gates()
    async with JobManager() as jobs:
        ref = await jobs.submit(gates, "g")
        await gates.wait_entered("g")
        results: list[State] = []

        async def waiter() -> None:
            info = await jobs.wait(ref.id)
            assert info is not None
            results.append(info.state)

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            tg.start_soon(waiter)
            await anyio.sleep(0.02)
            assert results == []
            gates.open("g")
        assert results == [State.SUCCEEDED, State.SUCCEEDED]


async def test_progress_is_visible_live() -> None:
    step = anyio.Event()
    proceed = anyio.Event()

    async def reporter(ctx: Context) -> None:
        ctx.set_progress(0.4, "loading")
        step.set()
        await proceed.wait()

    async with JobManager() as jobs:
        ref = await jobs.submit(reporter)
        await step.wait()
        info = await jobs.get(ref.id)
        assert info is not None
        assert (info.state, info.progress, info.message) == (State.RUNNING, 0.4, "loading")
        proceed.set()


async def test_failure_is_recorded_with_type() -> None:
    async with JobManager() as jobs:
        ref = await jobs.submit(boom)
        info = await jobs.wait(ref.id)
        assert info is not None
        assert info.state is State.FAILED
        assert info.error == "boom"
        assert info.error_type == "ValueError"


async def test_non_json_result_fails_the_job_clearly() -> None:
    async def returns_object(ctx: Context) -> object:
        return object()

    async with JobManager() as jobs:
        info = await jobs.wait((await jobs.submit(returns_object)).id)
        assert info is not None
        assert info.state is State.FAILED
        assert info.error_type == "TypeError"
        assert "JSON-safe" in (info.error or "")


async def test_info_to_dict_is_json_safe() -> None:
    async with JobManager() as jobs:
        ref = await jobs.submit(ok, {"a": [1, 2.5, "x", None, True]}, labels={"k": "v"})
        info = await jobs.wait(ref.id)
        assert info is not None
        data = info.to_dict()
        assert json.loads(json.dumps(data)) == data
        assert data["state"] == "succeeded"
        assert data["created_at"].endswith("+00:00")
        assert set(data) == {
            "id", "name", "state", "progress", "message", "labels", "params", "result", "error",
            "error_type", "priority", "attempts", "created_at", "scheduled_at", "started_at",
            "ended_at", "duration",
        }  # fmt: skip


async def test_params_are_copied_at_submit_and_infos_do_not_alias_the_record() -> None:
    params = {"items": [1, 2]}
    async with JobManager() as jobs:
        ref = await jobs.submit(ok, params)
        params["items"].append(3)
        info = await jobs.wait(ref.id)
        assert info is not None
        assert info.params == {"items": [1, 2]}
        info.params["items"].append(99)
        again = await jobs.get(ref.id)
        assert again is not None
        assert again.params == {"items": [1, 2]}


# -- bad input ------------------------------------------------------------------------------


async def test_bad_submissions_store_nothing() -> None:
    store = MemoryStore()
    async with JobManager(store) as jobs:
        cases: list[tuple[type[Exception], dict[str, Any]]] = [
            (TypeError, {"fn": 42}),
            (ValueError, {"fn": "never-registered"}),
            (TypeError, {"fn": ok, "id": 7}),
            (ValueError, {"fn": ok, "id": ""}),
            (TypeError, {"fn": ok, "params": {"x": object()}}),
            (TypeError, {"fn": ok, "params": {1: "non-str key"}}),
            (ValueError, {"fn": ok, "params": {"x": float("nan")}}),
            (ValueError, {"fn": ok, "delay": -1}),
            (TypeError, {"fn": ok, "delay": "soon"}),
            (ValueError, {"fn": ok, "at": datetime(2030, 1, 1)}),  # noqa: DTZ001 - naive on purpose
            (ValueError, {"fn": ok, "delay": 1, "at": datetime.now(UTC)}),
            (TypeError, {"fn": ok, "labels": {"k": 1}}),
            (TypeError, {"fn": ok, "priority": "high"}),
            (TypeError, {"fn": ok, "priority": 1.5}),
            (ValueError, {"fn": ok, "retry": Retry(3), "timeout": -1}),
            (TypeError, {"fn": ok, "retry": "3"}),
            (TypeError, {"fn": ok, "name": 3}),
        ]
        for error, kwargs in cases:
            fn = kwargs.pop("fn")
            with pytest.raises(error):
                await jobs.submit(fn, **kwargs)
        assert (await jobs.stats()).total == 0
        assert await jobs.list() == []
        if hasattr(store, "__len__"):
            assert len(store) == 0
        ref = await jobs.submit(ok, id="dup")
        with pytest.raises(JobError, match="already exists"):
            await jobs.submit(ok, id="dup")
        assert (await jobs.stats()).total == 1
        await jobs.wait(ref.id)


async def test_submit_outside_the_context_raises() -> None:
    jobs = JobManager()
    with pytest.raises(JobError, match="not started"):
        await jobs.submit(ok)
    async with jobs:
        pass
    with pytest.raises(JobError, match="closed"):
        await jobs.submit(ok)
    with pytest.raises(JobError):
        async with jobs:
            pass


def test_constructor_validation() -> None:
    with pytest.raises(ValueError):
        JobManager(max_concurrency=0)
    with pytest.raises(TypeError):
        JobManager(max_concurrency=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        JobManager(retention=-1)
    with pytest.raises(ValueError):
        JobManager(shutdown_timeout=float("nan"))
    with pytest.raises(TypeError):
        JobManager(store=object())  # type: ignore[arg-type]


async def test_list_validation() -> None:
    async with JobManager() as jobs:
        with pytest.raises(ValueError):
            await jobs.list(limit=1001)
        with pytest.raises(ValueError):
            await jobs.list(limit=0)
        with pytest.raises(ValueError):
            await jobs.list(offset=-1)
        with pytest.raises(TypeError):
            await jobs.list(state="failed")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await jobs.list(created_after=datetime(2020, 1, 1))  # noqa: DTZ001
        assert await jobs.list(limit=1000) == []


# -- register -------------------------------------------------------------------------------


async def test_register_and_submit_by_name() -> None:
    async with JobManager() as jobs:

        @jobs.register
        async def double(ctx: Context) -> int:
            return int(ctx.params) * 2

        jobs.register(ok, name="echo")
        jobs.register(ok, name="echo")  # the same function again is fine
        with pytest.raises(ValueError, match="already registered"):
            jobs.register(boom, name="echo")
        ref = await jobs.submit("echo", "hi")
        assert ref.name == "echo"
        info = await jobs.wait(ref.id)
        assert info is not None
        assert info.result == "hi"
        info = await jobs.wait((await jobs.submit(double, 21)).id)
        assert info is not None
        assert info.result == 42
        assert info.name.endswith("double")


# -- list and stats ----------------------------------------------------------------------------


async def test_list_filters_and_pages_newest_first() -> None:
    async with JobManager() as jobs:
        refs = []
        for i in range(6):
            fn = ok if i % 3 else boom
            labels = {"project": "a" if i < 3 else "b", "i": str(i)}
            refs.append(await jobs.submit(fn, i, name=f"n{i % 2}", labels=labels))
        for ref in refs:
            await jobs.wait(ref.id)
        everything = await jobs.list()
        assert [info.id for info in everything] == [ref.id for ref in reversed(refs)]
        failed = await jobs.list(state=State.FAILED)
        assert {info.params for info in failed} == {0, 3}
        both = await jobs.list(state=[State.FAILED, State.SUCCEEDED])
        assert len(both) == 6
        assert [i.params for i in await jobs.list(name="n1")] == [5, 3, 1]
        assert [i.params for i in await jobs.list(labels={"project": "b"})] == [5, 4, 3]
        assert [i.params for i in await jobs.list(labels={"project": "b", "i": "4"})] == [4]
        assert [i.params for i in await jobs.list(limit=2, offset=1)] == [4, 3]
        assert await jobs.list(offset=10) == []
        middle = everything[3].created_at
        newer = await jobs.list(created_after=middle)
        assert all(info.created_at > middle for info in newer)
        older = await jobs.list(created_before=middle)
        assert all(info.created_at < middle for info in older)
        assert len(newer) + len(older) + 1 >= 6 - 1  # timestamps may tie at µs resolution


async def test_stats() -> None:
    gates = Gates()
    async with JobManager() as jobs:
        empty = await jobs.stats()
        assert empty.total == 0
        assert set(empty.by_state) == set(State)
        assert empty.success_rate == 0.0
        assert empty.average_duration == 0.0
        for i in range(3):
            await jobs.wait((await jobs.submit(ok, i, labels={"team": "x"})).id)
        await jobs.wait((await jobs.submit(boom, labels={"team": "y"})).id)
        await jobs.submit(gates, "run", name="gate")
        await gates.wait_entered("run")
        stats = await jobs.stats()
        assert stats.total == 5
        assert stats.by_state[State.SUCCEEDED] == 3
        assert stats.by_state[State.FAILED] == 1
        assert stats.by_state[State.RUNNING] == 1
        assert stats.by_state[State.CANCELED] == 0
        assert stats.active == 1
        assert stats.success_rate == pytest.approx(0.75)
        assert stats.average_duration >= 0.0
        assert stats.by_name == {"ok": 3, "boom": 1, "gate": 1}
        assert (await jobs.stats(name="ok")).total == 3
        team_y = await jobs.stats(labels={"team": "y"})
        assert team_y.total == 1
        assert team_y.by_state[State.FAILED] == 1
        assert team_y.success_rate == 0.0
        assert (await jobs.stats(name="nothing")).total == 0
        gates.open("run")


# -- cancel and retry ---------------------------------------------------------------------------


async def test_cancel_waiting_running_and_done() -> None:
    gates = Gates()
    async with JobManager(max_concurrency=1) as jobs:
        running = await jobs.submit(gates, "r")
        waiting = await jobs.submit(gates, "w")
        await gates.wait_entered("r")
        assert await jobs.cancel(waiting.id) is True
        assert await jobs.status(waiting.id) is State.CANCELED  # at once
        assert await jobs.cancel(running.id) is True
        assert await jobs.status(running.id) in {State.CANCELING, State.CANCELED}
        info = await jobs.wait(running.id)
        assert info is not None
        assert info.state is State.CANCELED
        assert await jobs.cancel(running.id) is False
        assert "w" not in gates.order  # the canceled waiting job never ran


async def test_retry_runs_the_same_id_again() -> None:
    calls = 0

    async def flaky(ctx: Context) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            msg = "first time fails"
            raise RuntimeError(msg)
        return "second time works"

    async with JobManager() as jobs:
        ref = await jobs.submit(flaky)
        failed = await jobs.wait(ref.id)
        assert failed is not None
        assert (failed.state, failed.attempts) == (State.FAILED, 1)
        again = await jobs.retry(ref.id)
        assert again.id == ref.id
        info = await jobs.wait(ref.id)
        assert info is not None
        assert (info.state, info.attempts, info.result, info.error) == (
            State.SUCCEEDED,
            2,
            "second time works",
            None,
        )
        with pytest.raises(JobStateError, match="succeeded"):
            await jobs.retry(ref.id)


async def test_retry_a_canceled_job() -> None:
    gates = Gates()
    async with JobManager() as jobs:
        ref = await jobs.submit(gates, "c")
        await gates.wait_entered("c")
        await jobs.cancel(ref.id)
        assert (await jobs.wait(ref.id)).state is State.CANCELED  # type: ignore[union-attr]
        await jobs.retry(ref.id)
        gates.open("c")
        info = await jobs.wait(ref.id)
        assert info is not None
        assert (info.state, info.attempts) == (State.SUCCEEDED, 2)


async def test_retry_of_running_job_is_refused() -> None:
    gates = Gates()
    async with JobManager() as jobs:
        ref = await jobs.submit(gates, "x")
        await gates.wait_entered("x")
        with pytest.raises(JobStateError):
            await jobs.retry(ref.id)
        gates.open("x")


# -- executor policies through the manager ----------------------------------------------------------


async def test_retry_policy_keeps_the_record_running_between_attempts() -> None:
    calls = 0

    async def flaky(ctx: Context) -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            msg = f"fail {calls}"
            raise ConnectionError(msg)
        return "ok"

    async with JobManager() as jobs:
        events = jobs.events()
        ref = await jobs.submit(flaky, retry=Retry(3, delay=0.01))
        info = await jobs.wait(ref.id)
        assert info is not None
        assert (info.state, info.attempts, info.result) == (State.SUCCEEDED, 3, "ok")
        states = []
        async for event in events:
            states.append(event.state)
            if event.state.is_done:
                break
        assert states == [State.CREATED, State.RUNNING, State.SUCCEEDED]


async def test_timeout_policy() -> None:
    async def hang(ctx: Context) -> None:
        await anyio.sleep_forever()

    async with JobManager() as jobs:
        ref = await jobs.submit(hang, timeout=0.05, retry=2)
        info = await jobs.wait(ref.id)
        assert info is not None
        assert (info.state, info.error_type, info.attempts) == (State.FAILED, "TimeoutError", 2)


# -- scheduling ---------------------------------------------------------------------------------------


async def test_priority_then_fifo() -> None:
    gates = Gates()
    async with JobManager(max_concurrency=1) as jobs:
        await jobs.submit(gates, "blocker")
        await gates.wait_entered("blocker")
        for key, priority in [("low1", 0), ("high1", 5), ("low2", 0), ("high2", 5), ("mid", 1)]:
            await jobs.submit(gates, key, priority=priority)
        for key in ["blocker", "high1", "high2", "mid", "low1", "low2"]:
            gates.open(key)
    assert gates.order == ["blocker", "high1", "high2", "mid", "low1", "low2"]


async def test_max_concurrency_is_respected() -> None:
    gates = Gates()
    async with JobManager(max_concurrency=3) as jobs:
        refs = [await jobs.submit(gates, i) for i in range(10)]
        for i in range(3):
            await gates.wait_entered(i)
        await anyio.sleep(0.01)
        assert gates.running == 3
        for i in range(10):
            gates.open(i)
        for ref in refs:
            await jobs.wait(ref.id)
    assert gates.max_running == 3


async def test_unlimited_concurrency_never_blocks_a_startable_job() -> None:
    gates = Gates()
    async with JobManager() as jobs:
        for i in range(20):
            await jobs.submit(gates, i)
        with anyio.fail_after(5):
            for i in range(20):
                await gates.wait_entered(i)  # all 20 run at once
        assert gates.running == 20
        for i in range(20):
            gates.open(i)


@pytest.mark.parametrize(
    "anyio_backend",
    [pytest.param("mock", id="trio-mockclock"), pytest.param(("asyncio", {}), id="asyncio")],
    indirect=True,
)
async def test_delay_and_at_schedule_the_start(anyio_backend: Any, store_kind: str) -> None:
    virtual = anyio_backend[0] == "trio"
    if virtual and store_kind in {"sqlite", "postgres"}:
        pytest.skip("an autojumping clock jumps while the store's thread works: real time only")
    delay = 30.0 if virtual else 0.2
    started: dict[str, float] = {}

    async def stamp(ctx: Context) -> None:
        started[ctx.params] = anyio.current_time()

    async with JobManager() as jobs:
        t0 = anyio.current_time()
        ref = await jobs.submit(stamp, "delay", delay=delay)
        assert await jobs.status(ref.id) is State.CREATED
        at = datetime.now(UTC) + timedelta(seconds=delay / 2)
        ref2 = await jobs.submit(stamp, "at", at=at)
        assert abs((ref2.scheduled_at - at).total_seconds()) < 0.01
        await jobs.submit(stamp, "now")
        await jobs.wait(ref.id)
        await jobs.wait(ref2.id)
    assert started["now"] < started["at"] < started["delay"]
    assert started["at"] - t0 >= delay / 2 * 0.9
    assert started["delay"] - t0 >= delay * 0.9


# -- events ---------------------------------------------------------------------------------------------


async def test_events_in_order_per_job_and_filtered() -> None:
    async def steps(ctx: Context) -> None:
        for i in range(3):
            ctx.set_progress((i + 1) / 3, f"step {i + 1}")
            await anyio.lowlevel.checkpoint()

    seen: list[tuple[State, float, str | None]] = []
    async with JobManager() as jobs:
        all_events = jobs.events()
        ref = await jobs.submit(steps)
        one = jobs.events(ref.id)
        other = await jobs.submit(ok)

        async def follow() -> None:
            async for event in one:
                assert event.job_id == ref.id
                assert event.at.tzinfo is not None
                seen.append((event.state, event.progress, event.message))

        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            await jobs.wait(ref.id)
            await jobs.wait(other.id)
            await anyio.sleep(0.01)
            one.close()
    assert seen[0][0] is State.RUNNING  # subscribed after submit: CREATED happened before
    assert seen[-1][0] is State.SUCCEEDED
    progress = [p for _, p, _ in seen]
    assert progress == sorted(progress)
    collected = [event async for event in all_events]  # ended when the manager closed
    assert {event.job_id for event in collected} == {ref.id, other.id}
    assert [e.state for e in collected if e.job_id == other.id] == [
        State.CREATED,
        State.RUNNING,
        State.SUCCEEDED,
    ]


async def test_slow_consumer_gets_coalesced_progress_and_never_blocks() -> None:
    async def chatty(ctx: Context) -> str:
        for i in range(1, 1001):
            ctx.set_progress(i / 1000, f"{i}")
            if i % 100 == 0:
                await anyio.lowlevel.checkpoint()
        return "done"

    async with JobManager() as jobs:
        events = jobs.events()
        ref = await jobs.submit(chatty)
        info = await jobs.wait(ref.id)  # the job finished although nobody read the events
        assert info is not None
        assert info.state is State.SUCCEEDED
    received = [event async for event in events]
    assert len(received) < 20
    assert received[0].state is State.CREATED
    assert received[-1].state is State.SUCCEEDED
    assert received[-1].progress == 1.0
    progress = [e.progress for e in received]
    assert progress == sorted(progress)


async def test_events_after_close_are_refused() -> None:
    async with JobManager() as jobs:
        pass
    with pytest.raises(JobError):
        jobs.events()


# -- cleanup and retention ----------------------------------------------------------------------------


async def test_cleanup_deletes_only_old_finished_jobs() -> None:
    gates = Gates()
    async with JobManager() as jobs:
        done = await jobs.submit(ok)
        await jobs.wait(done.id)
        running = await jobs.submit(gates, "r")
        await gates.wait_entered("r")
        assert await jobs.cleanup(timedelta(hours=1)) == 0
        assert await jobs.cleanup(0) == 1
        assert await jobs.get(done.id) is None
        assert await jobs.status(running.id) is State.RUNNING
        with pytest.raises(ValueError):
            await jobs.cleanup(-1)
        gates.open("r")


async def test_retention_cleans_up_automatically() -> None:
    async with JobManager(retention=0.05) as jobs:
        ref = await jobs.submit(ok)
        assert (await jobs.wait(ref.id)) is not None
        # Deleting emits no event to wait on: poll, with a generous margin (cleanup runs every 25 ms).
        with anyio.fail_after(10):
            while await jobs.get(ref.id) is not None:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        assert (await jobs.stats()).total == 0


# -- shutdown -------------------------------------------------------------------------------------------


async def test_shutdown_waits_for_running_jobs() -> None:
    store = MemoryStore()

    async def short(ctx: Context) -> str:
        await anyio.sleep(0.05)
        return "finished"

    async with JobManager(store) as jobs:
        ref = await jobs.submit(short)
    info = await store.get(ref.id)
    assert info is not None
    assert info.state is State.SUCCEEDED


async def test_shutdown_cancels_what_is_left_and_loses_nothing() -> None:
    store = MemoryStore()
    gates = Gates()
    async with JobManager(store, max_concurrency=1, shutdown_timeout=0.1) as jobs:
        running = await jobs.submit(gates, "stuck")
        queued = await jobs.submit(gates, "queued")
        later = await jobs.submit(gates, "later", delay=3600)
        await gates.wait_entered("stuck")
    for ref in (running, queued, later):
        info = await store.get(ref.id)
        assert info is not None
        assert info.state is State.CANCELED, ref
        assert info.ended_at is not None
    assert gates.order == ["stuck"]


async def test_shutdown_of_a_job_that_ignores_cancellation() -> None:
    store = MemoryStore()
    entered = anyio.Event()

    async def stubborn(ctx: Context) -> None:
        entered.set()
        with anyio.CancelScope(shield=True):
            await anyio.sleep(0.3)

    async with JobManager(store, shutdown_timeout=0.05) as jobs:
        ref = await jobs.submit(stubborn)
        await entered.wait()
    info = await store.get(ref.id)
    assert info is not None
    assert info.state is State.CANCELED


async def test_body_exception_still_records_everything() -> None:
    store = MemoryStore()
    gates = Gates()
    refs: list[anyjob.JobRef] = []

    async def crash() -> None:
        async with JobManager(store, shutdown_timeout=0.05) as jobs:
            refs.append(await jobs.submit(gates, "g"))
            await gates.wait_entered("g")
            msg = "app crashed"
            raise RuntimeError(msg)

    with pytest.raises(RuntimeError, match="app crashed"):
        await crash()
    ref = refs[0]
    info = await store.get(ref.id)
    assert info is not None
    assert info.state is State.CANCELED


# -- several managers over one store ---------------------------------------------------------------------


async def test_two_managers_share_one_store() -> None:
    store = MemoryStore()
    gates = Gates()
    async with JobManager(store) as a, JobManager(store) as b:
        seen_by_b = b.events()
        ref = await a.submit(gates, "shared", labels={"from": "a"})
        await gates.wait_entered("shared")
        # Another manager learns of a's changes once a has written them (at once with a
        # MemoryStore, after a's next batch with other stores): follow b's events.
        with anyio.fail_after(5):
            async for event in seen_by_b:
                if event.job_id == ref.id and event.state is State.RUNNING:
                    break
        seen_by_b.close()
        info = await b.get(ref.id)
        assert info is not None
        assert info.state is State.RUNNING
        assert [i.id for i in await b.list(labels={"from": "a"})] == [ref.id]
        assert (await b.stats()).by_state[State.RUNNING] == 1

        # b waits for a's job: woken through the store's change feed.
        async with anyio.create_task_group() as tg:
            results: list[State] = []

            async def wait_in_b() -> None:
                done = await b.wait(ref.id)
                assert done is not None
                results.append(done.state)

            tg.start_soon(wait_in_b)
            await anyio.sleep(0.01)
            assert await b.cancel(ref.id) is True  # reaches the job running under a
        assert results == [State.CANCELED]
        assert gates.order == ["shared"]
        assert (await a.get(ref.id)).state is State.CANCELED  # type: ignore[union-attr]


async def test_cancel_a_waiting_job_of_another_manager() -> None:
    store = MemoryStore()
    gates = Gates()
    async with JobManager(store, max_concurrency=1) as a, JobManager(store) as b:
        await a.submit(gates, "first")
        waiting = await a.submit(gates, "second")
        await gates.wait_entered("first")
        assert await b.cancel(waiting.id) is True
        assert await b.status(waiting.id) is State.CANCELED
        gates.open("first")
        await a.wait(waiting.id)
        await anyio.sleep(0.01)
        assert "second" not in gates.order
        assert (await a.get(waiting.id)).state is State.CANCELED  # type: ignore[union-attr]


# -- memory ------------------------------------------------------------------------------------------------


async def test_finished_jobs_keep_no_frames_or_coroutines() -> None:
    class Marker:
        pass

    refs: list[weakref.ref[Marker]] = []

    async def fn(ctx: Context) -> int:
        local = Marker()
        refs.append(weakref.ref(local))
        await anyio.lowlevel.checkpoint()
        return 1

    async def failing(ctx: Context) -> None:
        local = Marker()
        refs.append(weakref.ref(local))
        msg = "x"
        raise ValueError(msg)

    async with JobManager() as jobs:
        for f in (fn, failing):
            await jobs.wait((await jobs.submit(f)).id)
        gc.collect()
        assert [r() for r in refs] == [None, None]  # the record keeps only strings
        assert jobs._entries == {}


async def test_fresh_closures_per_submission_do_not_grow_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    from anyjob import _manager

    monkeypatch.setattr(_manager, "_MAX_LOCAL_SPECS", 5)
    async with JobManager() as jobs:
        refs = []
        for i in range(20):

            async def closure(ctx: Context, i: int = i) -> int:
                if i == 19:
                    msg = "last one fails"
                    raise ValueError(msg)
                return i

            refs.append(await jobs.submit(closure))
        for ref in refs:
            await jobs.wait(ref.id)
        assert len(jobs._specs) <= 5
        assert len(jobs._local_specs) <= 5
        await jobs.retry(refs[-1].id)  # recent enough to be remembered
        await jobs.wait(refs[-1].id)
        failed_early = await jobs.submit(boom)
        await jobs.wait(failed_early.id)
        for i in range(6):  # push boom's spec out

            async def other(ctx: Context, i: int = i) -> int:
                return i

            await jobs.wait((await jobs.submit(other)).id)
        with pytest.raises(JobError, match="register it"):
            await jobs.retry(failed_early.id)


async def test_unhashable_callable_can_be_submitted() -> None:
    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        async def __call__(self, ctx: Context) -> str:
            return "ran"

    async with JobManager() as jobs:
        info = await jobs.wait((await jobs.submit(Unhashable(), name="u")).id)
        assert info is not None
        assert info.result == "ran"


async def test_writes_to_a_protocol_store_are_coalesced(store_kind: str) -> None:
    if store_kind != "protocol":
        pytest.skip("the test store counts the batches (a MemoryStore is written in place)")

    async def chatty(ctx: Context) -> None:
        for i in range(1, 501):
            ctx.set_progress(i / 500)
            if i % 50 == 0:
                await anyio.lowlevel.checkpoint()

    async with JobManager() as jobs:
        store = jobs.store
        ref = await jobs.submit(chatty)
        info = await jobs.wait(ref.id)
        assert info is not None
        assert (info.state, info.progress) == (State.SUCCEEDED, 1.0)
        assert store.batches < 50  # type: ignore[attr-defined]  # 500 reports, a few batches


async def test_event_buffer_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from anyjob import _events

    monkeypatch.setattr(_events, "MAX_BUFFERED", 10)
    async with JobManager() as jobs:
        stream = jobs.events()
        refs = [await jobs.submit(ok, i) for i in range(20)]  # 60 state changes, nobody reading
        for ref in refs:
            await jobs.wait(ref.id)
    received = [event async for event in stream]
    assert len(received) == 10
    assert stream.dropped == 50
    assert received[-1].state is State.SUCCEEDED  # the newest are kept


async def test_cancel_between_retries_stops_the_executor() -> None:
    scheduled = anyio.Event()

    def on_event(event: instrumentation.HookEvent) -> None:
        if event.name == instrumentation.RETRY_SCHEDULED:
            scheduled.set()

    instrumentation.set_hooks([on_event])
    async with JobManager() as jobs:
        ref = await jobs.submit(boom, retry=Retry(5, delay=1000))
        with anyio.fail_after(5):
            await scheduled.wait()  # the first attempt failed; the executor waits to retry
            assert await jobs.status(ref.id) is State.RUNNING
            assert await jobs.cancel(ref.id) is True
            info = await jobs.wait(ref.id)
        assert info is not None
        assert (info.state, info.attempts) == (State.CANCELED, 1)


def test_ready_queue_orders_and_forgets_unused_priorities() -> None:
    from anyjob._manager import _Entry, _ReadyQueue
    from anyjob.stores import JobRecord

    def entry(priority: int, name: str) -> _Entry:
        record = JobRecord(
            id=name, name=name, state=State.CREATED, labels={}, params=None, priority=priority,
            created=0.0, scheduled=0.0, owner="o",
        )  # fmt: skip
        return _Entry(None, record, None, State.CREATED)  # type: ignore[arg-type]

    queue = _ReadyQueue()
    for priority, name in [(0, "a"), (5, "b"), (-3, "c"), (5, "d"), (0, "e"), (100, "f")]:
        queue.push(entry(priority, name))
    assert len(queue) == 6
    order = []
    while (item := queue.pop()) is not None:
        order.append(item.record.id)
    assert order == ["f", "b", "d", "a", "e", "c"]
    assert len(queue) == 0
    assert len(queue._levels) <= 1


async def test_wait_returns_the_final_info_even_if_the_record_is_gone() -> None:
    from conftest import DelegatingStore

    class ForgetsFinished(DelegatingStore):
        """Reads as if retention deleted every finished record at once."""

        async def get(self, job_id):  # type: ignore[no-untyped-def]
            info = await self.inner.get(job_id)
            return None if info is not None and info.state.is_done else info

    gates = Gates()
    async with JobManager(ForgetsFinished()) as jobs:
        ref = await jobs.submit(gates, "g")
        await gates.wait_entered("g")
        results: list[anyjob.JobInfo | None] = []

        async def waiter() -> None:
            results.append(await jobs.wait(ref.id))

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(0.01)
            gates.open("g")
        assert results[0] is not None
        assert results[0].state is State.SUCCEEDED
        assert results[0].result == "g"


# -- jobs without retry/timeout run in place in a worker (one cancel scope per worker) --------


async def test_a_worker_runs_on_after_one_of_its_jobs_is_canceled() -> None:
    gates = Gates()
    async with JobManager(max_concurrency=1) as jobs:  # one worker runs all three
        first = await jobs.submit(gates, 1)
        second = await jobs.submit(gates, 2)
        third = await jobs.submit(ok, 3)
        await gates.wait_entered(1)
        assert await jobs.cancel(first.id) is True
        await gates.wait_entered(2)  # the next job started, in a fresh scope
        assert await jobs.status(second.id) is State.RUNNING
        gates.open(2)
        second_info = await jobs.wait(second.id)
        third_info = await jobs.wait(third.id)
        first_info = await jobs.get(first.id)
    assert first_info is not None
    assert first_info.state is State.CANCELED
    assert second_info is not None
    assert second_info.state is State.SUCCEEDED
    assert second_info.result == 2
    assert third_info is not None
    assert third_info.result == 3


async def test_canceling_one_job_leaves_the_others_running() -> None:
    gates = Gates()
    async with JobManager() as jobs:
        refs = [await jobs.submit(gates, i) for i in range(3)]
        for i in range(3):
            await gates.wait_entered(i)
        assert await jobs.cancel(refs[1].id) is True
        assert (await jobs.wait(refs[1].id)).state is State.CANCELED  # type: ignore[union-attr]
        assert await jobs.status(refs[0].id) is State.RUNNING
        assert await jobs.status(refs[2].id) is State.RUNNING
        gates.open(0)
        gates.open(2)
        infos = [await jobs.wait(refs[i].id) for i in (0, 2)]
    assert [info.state for info in infos if info] == [State.SUCCEEDED, State.SUCCEEDED]


async def test_a_job_that_swallows_its_cancellation_ends_canceled_and_the_next_one_is_not_hit() -> None:
    entered = anyio.Event()

    async def swallow(ctx: Context) -> str:
        entered.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            return "ignored the cancel"
        return "never"

    async def later(ctx: Context) -> str:
        await anyio.lowlevel.checkpoint()
        await anyio.lowlevel.checkpoint()
        return "fine"

    async with JobManager(max_concurrency=1) as jobs:
        stubborn = await jobs.submit(swallow)
        following = await jobs.submit(later)
        await entered.wait()
        assert await jobs.cancel(stubborn.id) is True
        stubborn_info = await jobs.wait(stubborn.id)
        following_info = await jobs.wait(following.id)
    assert stubborn_info is not None
    assert stubborn_info.state is State.CANCELED
    assert stubborn_info.result is None
    assert following_info is not None
    assert following_info.state is State.SUCCEEDED
    assert following_info.result == "fine"


async def test_a_job_can_cancel_itself() -> None:
    holder: dict[str, JobManager] = {}
    reached: list[str] = []

    async def self_cancel(ctx: Context) -> None:
        assert await holder["jobs"].cancel(ctx.id) is True
        await anyio.lowlevel.checkpoint()  # the cancellation arrives here at the latest
        reached.append("after")  # pragma: no cover - must not run

    async with JobManager() as jobs:
        holder["jobs"] = jobs
        ref = await jobs.submit(self_cancel)
        info = await jobs.wait(ref.id)
        after = await jobs.wait((await jobs.submit(ok, 1)).id)
    assert info is not None
    assert info.state is State.CANCELED
    assert reached == []
    assert after is not None
    assert after.state is State.SUCCEEDED


async def test_an_error_raised_while_unwinding_a_cancel_is_kept() -> None:
    entered = anyio.Event()

    async def unwind_badly(ctx: Context) -> None:
        entered.set()
        try:
            await anyio.sleep_forever()
        finally:
            msg = "cleanup failed"
            raise RuntimeError(msg)

    async with JobManager() as jobs:
        ref = await jobs.submit(unwind_badly)
        await entered.wait()
        await jobs.cancel(ref.id)
        info = await jobs.wait(ref.id)
    assert info is not None
    assert info.state is State.CANCELED
    assert info.error == "cleanup failed"
    assert info.error_type == "RuntimeError"


async def test_set_result_and_a_stale_context() -> None:
    kept: list[Context] = []

    async def partial(ctx: Context) -> None:
        kept.append(ctx)
        ctx.set_result({"rows": 3})
        ctx.set_progress(0.5, "half")
        assert ctx.id
        assert ctx.name == "partial"
        assert ctx.labels == {"k": "v"}
        assert ctx.params == [1]
        ctx.logger.debug("test.partial")

    async with JobManager() as jobs:
        ref = await jobs.submit(partial, [1], name="partial", labels={"k": "v"})
        info = await jobs.wait(ref.id)
    assert info is not None
    assert info.result == {"rows": 3}
    assert info.progress == 0.5
    assert info.message == "half"
    with pytest.raises(JobStateError, match="has ended"):
        kept[0].set_progress(1.0)
    with pytest.raises(JobStateError, match="has ended"):
        kept[0].set_result(None)


async def test_hooks_see_every_job_run_in_place() -> None:
    seen: list[tuple[str, State, str | None, float | None]] = []

    def hook(event: instrumentation.HookEvent) -> None:
        error = None if event.error is None else type(event.error).__name__
        seen.append((event.name, event.state, error, event.duration))

    instrumentation.set_hooks([hook])
    entered = anyio.Event()

    async def hang(ctx: Context) -> None:
        entered.set()
        await anyio.sleep_forever()

    async with JobManager(max_concurrency=1) as jobs:
        await jobs.wait((await jobs.submit(ok)).id)
        await jobs.wait((await jobs.submit(boom)).id)
        hanging = await jobs.submit(hang)
        await entered.wait()
        await jobs.cancel(hanging.id)
        await jobs.wait(hanging.id)
    names = [(name, state, error) for name, state, error, _ in seen]
    assert names == [
        ("anyjob.job_started", State.RUNNING, None),
        ("anyjob.job_succeeded", State.SUCCEEDED, None),
        ("anyjob.job_started", State.RUNNING, None),
        ("anyjob.job_failed", State.FAILED, "ValueError"),
        ("anyjob.job_started", State.RUNNING, None),
        ("anyjob.job_canceled", State.CANCELED, None),
    ]
    durations = [duration for name, _, _, duration in seen if name != "anyjob.job_started"]
    assert all(duration is not None and duration >= 0 for duration in durations)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_keyboard_interrupt_in_a_job_is_recorded_and_raised(backend: str) -> None:
    # A plain test: on asyncio a KeyboardInterrupt in a task leaves the event loop itself.
    store = MemoryStore()
    refs: list[anyjob.JobRef] = []

    async def interrupt(ctx: Context) -> None:
        raise KeyboardInterrupt

    async def main() -> None:
        async with JobManager(store) as jobs:
            refs.append(await jobs.submit(interrupt))
            await anyio.sleep_forever()

    with pytest.raises((KeyboardInterrupt, BaseExceptionGroup)) as caught:
        anyio.run(main, backend=backend)
    if isinstance(caught.value, BaseExceptionGroup):
        assert caught.value.subgroup(KeyboardInterrupt) is not None
    info = anyio.run(store.get, refs[0].id)
    assert info is not None
    assert info.state is State.FAILED
    assert info.error_type == "KeyboardInterrupt"


# -- context variables: jobs start in the manager's context, and nothing leaks between jobs --------

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


async def test_context_variables_do_not_leak_between_jobs() -> None:
    seen: list[str] = []
    entered = anyio.Event()

    async def sets(ctx: Context) -> None:
        seen.append(request_id.get())
        request_id.set(f"set by {ctx.params}")
        if ctx.params == "canceled":
            entered.set()
            await anyio.sleep_forever()

    request_id.set("app")  # the manager's context: what every job starts with
    async with JobManager(max_concurrency=1) as jobs:  # one worker at a time runs them all
        token = request_id.set("request A")  # a submitter's own context is not handed on
        try:
            await jobs.wait((await jobs.submit(sets, "first")).id)
            await jobs.wait((await jobs.submit(sets, "second")).id)
            await jobs.wait((await jobs.submit(sets, "retried", retry=2)).id)
            canceled = await jobs.submit(sets, "canceled")
            await entered.wait()
            await jobs.cancel(canceled.id)
            await jobs.wait(canceled.id)
            await jobs.wait((await jobs.submit(sets, "last")).id)
        finally:
            request_id.reset(token)
    assert seen == ["app"] * 5
    assert request_id.get() == "app"


@pytest.fixture
def worker_starts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many worker tasks the managers in a test start (one number, counted up)."""
    from anyjob import _manager

    started = [0]
    original = _manager.JobManager._worker

    async def counting(self: JobManager) -> None:
        started[0] += 1
        await original(self)

    monkeypatch.setattr(_manager.JobManager, "_worker", counting)
    return started


async def test_jobs_that_leave_the_context_alone_share_a_worker(worker_starts: list[int]) -> None:
    async with JobManager(max_concurrency=1) as jobs:
        for i in range(20):
            await jobs.wait((await jobs.submit(ok, i)).id)
    assert worker_starts == [1]


async def test_jobs_that_set_context_variables_run_isolated_after_the_first(worker_starts: list[int]) -> None:
    seen: list[str] = []
    entered = anyio.Event()
    attempts: dict[str, int] = {}

    async def binds(ctx: Context) -> str:
        seen.append(request_id.get())
        request_id.set(f"job {ctx.params}")
        await anyio.lowlevel.checkpoint()
        assert request_id.get() == f"job {ctx.params}"  # its own value, across awaits
        if ctx.params == "block":
            entered.set()
            await anyio.sleep_forever()
        if ctx.params == "fail":
            raise ValueError(request_id.get())
        if ctx.params == "flaky":
            attempts["flaky"] = attempts.get("flaky", 0) + 1
            if attempts["flaky"] == 1:
                msg = "first attempt fails"
                raise ConnectionError(msg)
        return request_id.get()

    request_id.set("app")
    async with JobManager(max_concurrency=1) as jobs:
        infos = [await jobs.wait((await jobs.submit(binds, i)).id) for i in range(10)]
        blocked = await jobs.submit(binds, "block")
        await entered.wait()
        assert await jobs.cancel(blocked.id) is True
        blocked_info = await jobs.wait(blocked.id)
        failed = await jobs.wait((await jobs.submit(binds, "fail")).id)
        flaky = await jobs.wait((await jobs.submit(binds, "flaky", retry=anyjob.Retry(2, delay=0))).id)
        after = await jobs.wait((await jobs.submit(binds, "after")).id)
    assert [info.result for info in infos if info] == [f"job {i}" for i in range(10)]
    # Every job starts in the manager's context; the attempts of one job share one (as in one task).
    assert seen == ["app"] * 13 + ["job flaky", "app"]
    assert (
        worker_starts[0] <= 3
    )  # the first job retired one worker (and the Executor spec learned once); no more
    assert blocked_info is not None
    assert blocked_info.state is State.CANCELED
    assert failed is not None
    assert failed.state is State.FAILED
    assert failed.error == "job fail"
    assert flaky is not None
    assert (flaky.state, flaky.attempts, flaky.result) == (State.SUCCEEDED, 2, "job flaky")
    assert after is not None
    assert after.result == "job after"
    assert request_id.get() == "app"


async def test_a_job_sees_itself_running_before_it_first_yields() -> None:
    # The store may put off moving a starting job in its state index until somebody looks:
    # whoever looks (list, stats, another manager) sees it RUNNING.
    holder: dict[str, JobManager] = {}
    seen: dict[str, Any] = {}

    async def looks(ctx: Context) -> None:
        jobs = holder["jobs"]
        seen["listed"] = [info.id for info in await jobs.list(state=State.RUNNING)]
        seen["stats"] = (await jobs.stats()).by_state[State.RUNNING]
        seen["created"] = (await jobs.stats()).by_state[State.CREATED]

    async def quick(ctx: Context) -> int:
        return 1

    async with JobManager(max_concurrency=1) as jobs:
        holder["jobs"] = jobs
        first = await jobs.submit(quick)  # ends without yielding, before `looks` starts
        ref = await jobs.submit(looks)
        info = await jobs.wait(ref.id)
        assert (await jobs.stats()).by_state[State.SUCCEEDED] == 2
        assert await jobs.list(state=State.RUNNING) == []
    assert info is not None
    assert info.state is State.SUCCEEDED, info.error
    assert seen == {"listed": [ref.id], "stats": 1, "created": 0}
    assert first.id != ref.id


async def test_wait_is_woken_by_an_end_that_comes_while_the_store_answers(store_kind: str) -> None:
    # A store that suspends while reading (any real database does): the job may end between the
    # read and the wait. The waiter is registered before the read, so that end still wakes it.
    from conftest import DelegatingStore

    if store_kind != "protocol":
        pytest.skip("one store kind is enough: this one controls when the read returns")
    reading = anyio.Event()
    answer = anyio.Event()

    class SlowReads(DelegatingStore):
        slow = False

        async def get(self, job_id):  # type: ignore[no-untyped-def]
            info = await self.inner.get(job_id)
            if self.slow:
                reading.set()
                await answer.wait()
            return info

    gates = Gates()
    store = SlowReads()
    results: list[anyjob.JobInfo | None] = []
    async with JobManager(store) as jobs:
        ref = await jobs.submit(gates, "g")
        await gates.wait_entered("g")
        store.slow = True

        async def waiting() -> None:
            results.append(await jobs.wait(ref.id))

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(waiting)
                await reading.wait()  # it has read the job RUNNING, and the answer is on its way
                store.slow = False
                gates.open("g")
                ended = await jobs.wait(ref.id)
                assert ended is not None
                assert ended.state is State.SUCCEEDED
                answer.set()  # now the first read answers, with the job still RUNNING in it
        assert not jobs._waiters
    assert results[0] is not None
    assert results[0].state is State.SUCCEEDED
