"""The Store contract, run over every store: memory, protocol-only, SQLite, PostgreSQL."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.stores.support import StoreKit, changes_until, record

from anyjob import JobError, State, StoreError
from anyjob.stores import JobQuery, PostgresStore, RecordUpdate, SQLiteStore, Store
from conftest import POSTGRES_DSN

pytestmark = pytest.mark.anyio

_RUNNING = frozenset({State.RUNNING})
_T = 1_700_000_000.0  # when support.record() creates its records


class TestStoreContract:
    async def test_open_is_idempotent(self, kit: StoreKit) -> None:
        store = kit.store()
        assert isinstance(store, Store)
        await store.open()
        await store.open()
        assert await store.get("nothing") is None

    async def test_insert_and_a_duplicate_id(self, kit: StoreKit) -> None:
        store = kit.store()
        await store.open()
        await store.insert(record("j1", labels={"team": "data"}, params={"rows": [1, 2]}))
        with pytest.raises(JobError, match="already exists") as caught:
            await store.insert(record("j1"))
        assert not isinstance(caught.value, StoreError)
        assert caught.value.job_id == "j1"
        copy = await kit.new().get_record("j1")
        assert copy is not None
        assert (copy.state, dict(copy.labels), copy.params) == (
            State.CREATED,
            {"team": "data"},
            {"rows": [1, 2]},
        )

    async def test_apply_with_expected_states(self, kit: StoreKit) -> None:
        store = kit.store()
        await store.insert(record("j1"))
        applied = await store.apply(
            [
                RecordUpdate("j1", {"state": State.RUNNING, "started": 5.0}, frozenset({State.CREATED})),
                RecordUpdate("j1", {"state": State.FAILED}, frozenset({State.CREATED})),
                RecordUpdate("missing", {"state": State.FAILED}),
                RecordUpdate("j1", {"progress": 0.5, "message": "half"}),
            ],
            origin="manager-a",
        )
        assert applied == [True, False, False, True]
        info = await kit.new().get("j1")
        assert info is not None
        assert (info.state, info.progress, info.message) == (State.RUNNING, 0.5, "half")
        with pytest.raises(ValueError, match="cannot update"):
            await store.apply([RecordUpdate("j1", {"no_such_field": 1})], origin="a")
        with pytest.raises(ValueError, match="cannot update"):
            await store.apply([RecordUpdate("j1", {"id": "other"})], origin="a")
        assert await store.apply([], origin="a") == []

    async def test_apply_answers_each_update_of_a_run(self, kit: StoreKit) -> None:
        # Claims and ends come in runs of one statement (sent at once where the driver
        # pipelines): each update still gets its own answer, in order, and only the
        # applied ones change anything, whatever sits between them.
        store = kit.store()
        for job_id in ("a", "b", "c", "d"):
            await store.insert(record(job_id))
        claim = {"state": State.RUNNING, "started": 5.0}
        waiting = frozenset({State.CREATED})
        applied = await store.apply(
            [
                RecordUpdate("a", claim, waiting, owner="manager-a"),
                RecordUpdate("b", claim, waiting, owner="someone else"),
                RecordUpdate("missing", claim, waiting, owner="manager-a"),
                RecordUpdate("c", claim, waiting, owner="manager-a"),
                RecordUpdate("a", claim, waiting, owner="manager-a"),  # running by now
                RecordUpdate("d", {"labels": {"k": "v"}}),
                RecordUpdate("c", {"state": State.SUCCEEDED, "ended": 6.0}, frozenset({State.RUNNING})),
                RecordUpdate("b", {"state": State.SUCCEEDED, "ended": 6.0}, frozenset({State.RUNNING})),
            ],
            origin="manager-a",
        )
        assert applied == [True, False, False, True, False, True, True, False]
        reader = kit.new()
        states = {job_id: info.state for job_id in "abcd" if (info := await reader.get(job_id)) is not None}
        assert states == {"a": State.RUNNING, "b": State.CREATED, "c": State.SUCCEEDED, "d": State.CREATED}
        labeled = await reader.get("d")
        assert labeled is not None
        assert dict(labeled.labels) == {"k": "v"}

    async def test_reads_hand_out_copies(self, kit: StoreKit) -> None:
        store = kit.store()
        await store.insert(record("j1", params={"rows": [1]}, result=None))
        await store.apply([RecordUpdate("j1", {"result": {"out": [1]}})], origin="a")
        info = await store.get("j1")
        copy = await store.get_record("j1")
        assert info is not None
        assert copy is not None
        info.params["rows"].append(2)
        copy.result["out"].append(2)
        copy.state = State.FAILED
        again = await store.get_record("j1")
        assert again is not None
        assert (again.params, again.result, again.state) == ({"rows": [1]}, {"out": [1]}, State.CREATED)
        assert await store.get("missing") is None
        assert await store.get_record("missing") is None

    async def test_queries_filter_and_page_newest_first(self, kit: StoreKit) -> None:
        store = kit.store()
        base = 1_700_000_000.0
        for i in range(12):
            await store.insert(
                record(
                    f"j{i:02}",
                    name="even" if i % 2 == 0 else "odd",
                    state=State.SUCCEEDED if i < 6 else State.CREATED,
                    labels={"batch": str(i // 4), "all": "yes"},
                    created=base + i,
                )
            )
        reader = kit.new()

        async def ids(**filters: Any) -> list[str]:
            return [info.id for info in await reader.query(JobQuery(**filters))]

        assert await ids(limit=3) == ["j11", "j10", "j09"]
        assert await ids(limit=3, offset=3) == ["j08", "j07", "j06"]
        assert await ids(offset=11) == ["j00"]
        assert await ids(offset=12) == []
        assert await ids(states=frozenset({State.SUCCEEDED}), limit=2) == ["j05", "j04"]
        assert await ids(states=frozenset()) == []
        assert await ids(name="odd", states=frozenset({State.CREATED})) == ["j11", "j09", "j07"]
        assert await ids(labels={"batch": "1", "all": "yes"}) == ["j07", "j06", "j05", "j04"]
        assert await ids(labels={"batch": "1", "all": "no"}) == []
        assert await ids(created_after=base + 9, created_before=base + 11) == ["j10"]

    async def test_statistics(self, kit: StoreKit) -> None:
        store = kit.store()
        await store.insert(
            record("a", name="x", state=State.SUCCEEDED, started=1.0, ended=3.0, labels={"k": "v"})
        )
        await store.insert(record("b", name="x", state=State.FAILED, started=1.0, ended=2.0))
        await store.insert(record("c", name="y", state=State.RUNNING, started=1.0, labels={"k": "v"}))
        await store.insert(record("d", name="y"))
        stats = await kit.new().statistics()
        assert stats.total == 4
        assert set(stats.by_state) == set(State)
        assert (stats.by_state[State.SUCCEEDED], stats.by_state[State.CANCELED]) == (1, 0)
        assert stats.by_name == {"x": 2, "y": 2}
        assert (stats.active, stats.success_rate, stats.average_duration) == (2, 0.5, 1.5)
        named = await store.statistics(name="y")
        assert (named.total, named.by_name, named.success_rate) == (2, {"y": 2}, 0.0)
        by_label = await store.statistics(labels={"k": "v"})
        assert (by_label.total, by_label.by_name) == (2, {"x": 1, "y": 1})
        # Counts follow updates: a run ends, its duration is counted.
        await store.apply([RecordUpdate("c", {"state": State.SUCCEEDED, "ended": 4.0})], origin="a")
        stats = await store.statistics()
        assert (stats.by_state[State.SUCCEEDED], stats.active, stats.average_duration) == (2, 1, 2.0)

    async def test_cancel_requests(self, kit: StoreKit) -> None:
        store = kit.store()
        await store.insert(record("waiting"))
        await store.insert(record("running", state=State.RUNNING, started=1.0))
        await store.insert(record("done", state=State.SUCCEEDED, ended=10.0))
        other = kit.new()
        assert await other.request_cancel("waiting", origin="manager-b") is State.CREATED
        assert await other.request_cancel("running", origin="manager-b") is State.RUNNING
        assert await other.request_cancel("done", origin="manager-b") is State.SUCCEEDED
        assert await other.request_cancel("missing", origin="manager-b") is None
        waiting = await store.get_record("waiting")
        running = await store.get_record("running")
        assert waiting is not None
        assert running is not None
        assert (waiting.state, waiting.cancel_requested, waiting.ended is not None) == (
            State.CANCELED,
            True,
            True,
        )
        assert (running.state, running.cancel_requested) == (State.RUNNING, True)
        assert (await store.statistics()).by_state[State.CANCELED] == 1

    @pytest.mark.parametrize("end", [State.SUCCEEDED, State.FAILED])
    async def test_a_stored_cancel_request_wins_over_a_later_end(self, kit: StoreKit, end: State) -> None:
        store = kit.store()
        await store.insert(record("asked", state=State.RUNNING, started=1.0))
        await store.insert(record("not-asked", state=State.RUNNING, started=1.0))
        assert await kit.new().request_cancel("asked", origin="manager-b") is State.RUNNING
        ending = {"state": end, "ended": 2.0, "progress": 1.0, "result": "late"}
        applied = await store.apply(
            [RecordUpdate("asked", ending, _RUNNING), RecordUpdate("not-asked", ending, _RUNNING)],
            origin="manager-a",
        )
        assert applied == [True, True]  # it still counts as applied
        asked = await kit.new().get_record("asked")
        not_asked = await store.get_record("not-asked")
        assert asked is not None
        assert not_asked is not None
        assert (asked.state, asked.ended, asked.result) == (State.CANCELED, 2.0, "late")
        assert not_asked.state is end
        stats = await store.statistics()
        assert (stats.by_state[State.CANCELED], stats.by_state[end]) == (1, 1)
        # A retry clears the request: its next end stands.
        await store.apply(
            [RecordUpdate("asked", {"state": State.RUNNING, "cancel_requested": False})], origin="manager-a"
        )
        await store.apply([RecordUpdate("asked", {"state": end})], origin="manager-a")
        again = await store.get("asked")
        assert again is not None
        assert again.state is end

    async def test_delete_finished(self, kit: StoreKit) -> None:
        store = kit.store()
        await store.insert(record("old", state=State.SUCCEEDED, started=1.0, ended=10.0, labels={"k": "v"}))
        await store.insert(record("new", state=State.FAILED, ended=20.0))
        await store.insert(record("running", state=State.RUNNING))
        assert await store.delete_finished(5.0) == 0
        assert await kit.new().delete_finished(15.0) == 1
        assert await store.get("old") is None
        assert await store.query(JobQuery(labels={"k": "v"})) == []
        stats = await store.statistics()
        assert (stats.total, stats.by_name, stats.average_duration) == (2, {"job": 2}, 0.0)
        assert await store.delete_finished(25.0) == 1
        assert [info.id for info in await store.query(JobQuery())] == ["running"]

    async def test_feeds_report_other_origins_changes(self, kit: StoreKit) -> None:
        mine = kit.store()
        other = kit.new()  # another process, for a durable store; another manager otherwise
        await mine.open()
        feed = mine.subscribe("manager-a")
        await other.insert(record("j1", owner="manager-b"))
        await mine.insert(record("j2", owner="manager-a"))  # its own: not reported
        await other.request_cancel("j1", origin="manager-b")
        seen = await changes_until(
            feed, lambda seen: any(c.info is not None and c.info.state is State.CANCELED for c in seen)
        )
        assert {change.job_id for change in seen} == {"j1"}
        last = seen[-1]
        assert (last.cancel_requested, last.owner) == (True, "manager-b")
        assert await other.delete_finished(9e9) == 1
        gone = await changes_until(feed, lambda seen: any(c.job_id == "j1" and c.info is None for c in seen))
        assert gone[-1].owner == ""
        feed.close()
        assert [changes async for changes in feed] == []  # closed: the iterator ends

    async def test_durable_stores_raise_store_errors(self, kit: StoreKit) -> None:
        if not kit.durable:
            pytest.skip("only a durable store has a database to lose")
        store = kit.store()
        await store.insert(record("j1"))
        if isinstance(store, SQLiteStore):
            with contextlib.closing(sqlite3.connect(store.path)) as conn:
                conn.execute("DROP TABLE anyjob_jobs")
        else:
            import psycopg

            assert isinstance(store, PostgresStore)
            with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{store.schema}" CASCADE')
        with pytest.raises(StoreError, match="could not read job 'j1'") as caught:
            await store.get("j1")
        assert type(caught.value.__cause__).__module__.split(".")[0] in {"sqlite3", "psycopg"}
        with pytest.raises(StoreError, match="could not query jobs"):
            await store.query(JobQuery())
        with pytest.raises(StoreError, match="could not insert job 'j2'"):
            await store.insert(record("j2"))

    async def test_a_feed_subscribed_before_open_misses_nothing(self, kit: StoreKit) -> None:
        mine = kit.store()
        other = kit.new()
        feed = mine.subscribe("manager-a")  # no open(): nothing read yet
        await other.insert(record("j1", owner="manager-b"))  # before the feed's first iteration
        seen = await changes_until(feed, lambda seen: any(c.job_id == "j1" for c in seen))
        assert seen[-1].job_id == "j1"
        feed.close()

    # -- the fields of external jobs, and expire_stale ------------------------------------

    async def test_updated_traceback_and_stale_after_round_trip(self, kit: StoreKit) -> None:
        store = kit.store()
        trace = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: é\n'
        await store.insert(
            record(
                "full",
                state=State.RUNNING,
                started=_T + 5,
                updated=_T + 7.5,
                traceback=trace,
                stale_after=30.0,
            )
        )
        await store.insert(record("plain"))
        reader = kit.new()
        copy = await reader.get_record("full")
        assert copy is not None
        assert (copy.updated, copy.traceback, copy.stale_after) == (_T + 7.5, trace, 30.0)
        plain = await reader.get_record("plain")
        assert plain is not None
        assert (plain.updated, plain.traceback, plain.stale_after) == (None, None, None)
        info = await reader.get("full")
        assert info is not None
        assert (info.updated_at, info.traceback) == (datetime.fromtimestamp(_T + 7.5, UTC), trace)
        assert info.to_dict()["updated_at"] == datetime.fromtimestamp(_T + 7.5, UTC).isoformat()
        plain_info = await reader.get("plain")
        assert plain_info is not None
        assert (plain_info.updated_at, plain_info.traceback) == (plain_info.created_at, None)
        [listed] = await reader.query(JobQuery(states=_RUNNING))
        assert (listed.updated_at, listed.traceback) == (info.updated_at, trace)
        assert await store.apply(
            [RecordUpdate("plain", {"updated": 9.0, "traceback": "tb", "stale_after": 0.5})], origin="a"
        ) == [True]
        again = await reader.get_record("plain")
        assert again is not None
        assert (again.updated, again.traceback, again.stale_after) == (9.0, "tb", 0.5)
        await store.apply(
            [RecordUpdate("plain", {"updated": None, "traceback": None, "stale_after": None})], origin="a"
        )
        cleared = await reader.get_record("plain")
        assert cleared is not None
        assert (cleared.updated, cleared.traceback, cleared.stale_after) == (None, None, None)

    async def test_expire_stale_ends_only_silent_executing_records(self, kit: StoreKit) -> None:
        store = kit.store()
        now = 1_700_000_100.0
        old = now - 100
        watched = {"stale_after": 10.0, "created": old - 5, "scheduled": old - 5}
        for job_id, fields in {
            "lost": {"state": State.RUNNING, "started": old},
            "lost-updated": {"state": State.RUNNING, "started": old, "updated": now - 11},
            "lost-unstarted": {"state": State.RUNNING},  # no start recorded: created counts
            "lost-canceling": {"state": State.CANCELING, "started": old},
            "fresh-updated": {"state": State.RUNNING, "started": old, "updated": now - 9},
            "fresh-started": {"state": State.RUNNING, "started": now - 1},
            "exactly": {"state": State.RUNNING, "started": now - 10},  # not older: left
            "waiting": {"state": State.CREATED},
            "done": {"state": State.SUCCEEDED, "started": old, "ended": old + 1},
            "failed": {"state": State.FAILED, "started": old, "ended": old + 1, "error": "kept"},
        }.items():
            await store.insert(record(job_id, **{**watched, **fields}))
        await store.insert(record("unwatched", state=State.RUNNING, started=old, created=old - 5))
        before = await store.statistics()
        assert before.by_state[State.RUNNING] == 7
        ended = await kit.new().expire_stale(now, origin="manager-b")
        assert sorted(ended) == ["lost", "lost-canceling", "lost-unstarted", "lost-updated"]
        for job_id in ("lost", "lost-updated", "lost-unstarted"):
            lost = await store.get_record(job_id)
            assert lost is not None
            assert (lost.state, lost.error_type, lost.error, lost.ended) == (
                State.FAILED,
                "JobLostError",
                "no report for 10 s (stale_after)",
                now,
            )
        canceled = await store.get_record("lost-canceling")
        assert canceled is not None
        assert (canceled.state, canceled.ended, canceled.error, canceled.error_type) == (
            State.CANCELED,
            now,
            None,
            None,
        )
        for job_id, state in {
            "fresh-updated": State.RUNNING,
            "fresh-started": State.RUNNING,
            "exactly": State.RUNNING,
            "waiting": State.CREATED,
            "done": State.SUCCEEDED,
            "failed": State.FAILED,
            "unwatched": State.RUNNING,
        }.items():
            left = await store.get_record(job_id)
            assert left is not None
            assert (left.state, left.ended if state.is_executing else None) == (state, None)
        failed = await store.get_record("failed")
        assert failed is not None
        assert (failed.error, failed.ended) == ("kept", old + 1)
        stats = await store.statistics()
        assert stats.total == before.total
        assert (stats.by_state[State.RUNNING], stats.by_state[State.CANCELING]) == (4, 0)
        assert (stats.by_state[State.FAILED], stats.by_state[State.CANCELED]) == (4, 1)
        assert stats.active == 5  # four running, one waiting
        assert stats.average_duration == (1 + 1 + 100 + 100 + 100) / 5  # lost-unstarted has no start
        assert (await store.statistics(name="job")).by_state[State.FAILED] == 4
        assert await store.expire_stale(now, origin="manager-b") == []  # nothing left to end
        assert [info.id for info in await store.query(JobQuery(states=frozenset({State.CANCELED})))] == [
            "lost-canceling"
        ]

    async def test_expire_stale_lets_a_stored_cancel_request_win(self, kit: StoreKit) -> None:
        store = kit.store()
        await store.insert(record("asked", state=State.RUNNING, started=1.0, stale_after=0.5))
        assert await store.request_cancel("asked", origin="manager-b") is State.RUNNING
        assert await store.expire_stale(2.0, origin="manager-a") == ["asked"]
        asked = await kit.new().get_record("asked")
        assert asked is not None
        assert (asked.state, asked.ended, asked.error_type, asked.error) == (
            State.CANCELED,
            2.0,
            "JobLostError",
            "no report for 0.5 s (stale_after)",
        )

    async def test_expire_stale_watches_records_given_stale_after_later(self, kit: StoreKit) -> None:
        store = kit.store()
        await store.insert(record("later", state=State.RUNNING, started=1.0))
        assert await store.expire_stale(100.0, origin="a") == []
        await store.apply([RecordUpdate("later", {"stale_after": 5.0})], origin="a")
        assert await store.expire_stale(5.5, origin="a") == []
        await store.apply([RecordUpdate("later", {"updated": 50.0})], origin="a")
        assert await store.expire_stale(54.0, origin="a") == []
        assert await store.expire_stale(56.0, origin="a") == ["later"]
        # A retried job is watched again.
        await store.apply(
            [
                RecordUpdate(
                    "later", {"state": State.RUNNING, "started": 60.0, "ended": None, "updated": None}
                )
            ],
            origin="a",
        )
        assert await store.expire_stale(64.0, origin="a") == []
        assert await store.expire_stale(66.0, origin="a") == ["later"]
        # A deleted one is forgotten.
        assert await store.delete("later", origin="a") is State.FAILED
        assert await store.expire_stale(1e9, origin="a") == []

    async def test_expire_stale_reaches_other_origins_feeds(self, kit: StoreKit) -> None:
        mine = kit.store()
        other = kit.new()
        await mine.open()
        feed = mine.subscribe("manager-a")
        await mine.insert(record("j1", owner="manager-a", state=State.RUNNING, started=1.0, stale_after=1.0))
        await mine.insert(
            record("j2", owner="manager-a", state=State.CANCELING, started=1.0, stale_after=1.0)
        )
        assert sorted(await other.expire_stale(10.0, origin="manager-b")) == ["j1", "j2"]
        seen = await changes_until(
            feed,
            lambda seen: (
                {c.job_id for c in seen if c.info is not None and c.info.state.is_done} == {"j1", "j2"}
            ),
        )
        ends = {c.job_id: c.info for c in seen if c.info is not None and c.info.state.is_done}
        assert ends["j1"] is not None
        assert (ends["j1"].state, ends["j1"].error_type, ends["j1"].ended_at) == (
            State.FAILED,
            "JobLostError",
            datetime.fromtimestamp(10.0, UTC),
        )
        assert ends["j2"] is not None
        assert ends["j2"].state is State.CANCELED
        feed.close()
