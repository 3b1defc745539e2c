"""Submitting jobs: what a submission records, what it refuses, registered names, and memory."""

from __future__ import annotations

import gc
import json
import weakref
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from tests.manager.support import MakeStore, boom, ok

import anyjob
from anyjob import Context, JobError, JobManager, Retry, State

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]


async def test_submit_get_status_wait(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
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


async def test_failure_is_recorded_with_type(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        ref = await jobs.submit(boom)
        info = await jobs.wait(ref.id)
        assert info is not None
        assert info.state is State.FAILED
        assert info.error == "boom"
        assert info.error_type == "ValueError"


async def test_non_json_result_fails_the_job_clearly(make_store: MakeStore) -> None:
    async def returns_object(ctx: Context) -> object:
        return object()

    async with JobManager(make_store()) as jobs:
        info = await jobs.wait((await jobs.submit(returns_object)).id)
        assert info is not None
        assert info.state is State.FAILED
        assert info.error_type == "TypeError"
        assert "JSON-safe" in (info.error or "")


async def test_info_to_dict_is_json_safe(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
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
            "ended_at", "duration", "updated_at", "traceback",
        }  # fmt: skip
        assert data["updated_at"] == data["ended_at"]  # nothing reported after its end
        assert data["traceback"] is None


async def test_ref_statistics_and_event_to_dict_are_json_safe(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        events = jobs.events()
        ref = await jobs.submit(ok, delay=0.01, name="nightly")
        data = ref.to_dict()
        assert json.loads(json.dumps(data)) == data
        assert data == {"id": ref.id, "name": "nightly", "scheduled_at": ref.scheduled_at.isoformat()}
        await jobs.wait(ref.id)
        stats = (await jobs.stats()).to_dict()
        assert json.loads(json.dumps(stats)) == stats
        assert stats["total"] == 1
        assert stats["by_state"] == {state.value: int(state is State.SUCCEEDED) for state in State}
        assert stats["by_name"] == {"nightly": 1}
        assert set(stats) == {"total", "by_state", "by_name", "active", "success_rate", "average_duration"}
        async for event in events:
            data = event.to_dict()
            assert json.loads(json.dumps(data)) == data
            assert set(data) == {"job_id", "state", "progress", "message", "at"}
            assert data["at"] == event.at.isoformat()
            if data["state"] == "succeeded":
                break


async def test_params_are_copied_at_submit_and_infos_do_not_alias_the_record(make_store: MakeStore) -> None:
    params = {"items": [1, 2]}
    async with JobManager(make_store()) as jobs:
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


async def test_bad_submissions_store_nothing(make_store: MakeStore) -> None:
    store = make_store()
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


async def test_submit_outside_the_context_raises(make_store: MakeStore) -> None:
    jobs = JobManager(make_store())
    with pytest.raises(JobError, match="not started"):
        await jobs.submit(ok)
    async with jobs:
        pass
    with pytest.raises(JobError, match="closed"):
        await jobs.submit(ok)
    with pytest.raises(JobError):
        async with jobs:
            pass


def test_constructor_validation(make_store: MakeStore) -> None:
    store = make_store()  # the write strategy is chosen at construction: check with every kind
    with pytest.raises(ValueError):
        JobManager(store, max_concurrency=0)
    with pytest.raises(TypeError):
        JobManager(store, max_concurrency=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        JobManager(store, retention=-1)
    with pytest.raises(ValueError):
        JobManager(store, shutdown_timeout=float("nan"))
    with pytest.raises(TypeError):
        JobManager(store=object())  # type: ignore[arg-type]


# -- register -------------------------------------------------------------------------------


async def test_register_and_submit_by_name(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:

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


async def test_unhashable_callable_can_be_submitted(make_store: MakeStore) -> None:
    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        async def __call__(self, ctx: Context) -> str:
            return "ran"

    async with JobManager(make_store()) as jobs:
        info = await jobs.wait((await jobs.submit(Unhashable(), name="u")).id)
        assert info is not None
        assert info.result == "ran"


# -- memory ---------------------------------------------------------------------------------


async def test_finished_jobs_keep_no_frames_or_coroutines(make_store: MakeStore) -> None:
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

    async with JobManager(make_store()) as jobs:
        for f in (fn, failing):
            await jobs.wait((await jobs.submit(f)).id)
        gc.collect()
        assert [r() for r in refs] == [None, None]  # the record keeps only strings
        assert jobs._statistics().live == 0


async def test_fresh_closures_per_submission_do_not_grow_memory(
    make_store: MakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from anyjob._manager import _specs

    # The cap is 10,000 specs: lowered here (no constructor argument sets it).
    monkeypatch.setattr(_specs, "MAX_LOCAL_SPECS", 5)
    async with JobManager(make_store()) as jobs:
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
        statistics = jobs._statistics()
        assert statistics.specs <= 5
        assert statistics.local_specs <= 5
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


async def test_registered_lists_the_names_submit_accepts_in_order() -> None:
    async with JobManager() as jobs:
        assert jobs.registered == []
        jobs.register(ok, "second")
        jobs.register(boom, "first")
        assert jobs.registered == ["second", "first"]
        jobs.registered.append("not kept")  # a copy: the manager's own list is not handed out
        assert jobs.registered == ["second", "first"]
        info = await jobs.wait((await jobs.submit("second")).id)
        assert info is not None
        assert info.state is State.SUCCEEDED
