"""Every route of the HTTP API in-process: bodies, status codes and JSON error bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests.web.web_support import TestClient, error_of, register_all, served, wait_state

from anyjob import JobManager, State


def submit(client, name="echo", **body):
    response = client.post("/api/jobs", json={"name": name, **body})
    assert response.status_code == 201, response.text
    return response.json()


def test_submit_answers_201_with_the_ref_and_runs_the_function(backend):
    with served(backend) as (client, jobs):
        response = client.post(
            "/api/jobs",
            json={"name": "echo", "params": {"n": [1, 2]}, "labels": {"team": "a"}, "priority": 3},
        )
        assert response.status_code == 201
        ref = response.json()
        assert set(ref) == {"id", "name", "scheduled_at"}
        assert ref["name"] == "echo"
        assert response.headers["location"] == f"/api/jobs/{ref['id']}"
        info = wait_state(client, jobs, ref["id"], State.SUCCEEDED)
        assert info.result == {"n": [1, 2]}
        assert dict(info.labels) == {"team": "a"}
        assert info.priority == 3


def test_submit_with_a_delay_schedules_it(backend):
    with served(backend) as (client, _jobs):
        before = datetime.now(UTC)
        ref = submit(client, delay=3600)
        assert datetime.fromisoformat(ref["scheduled_at"]) >= before + timedelta(seconds=3599)
        assert client.get(f"/api/jobs/{ref['id']}").json()["state"] == "created"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"name": "nope"}, "no function is registered as 'nope'"),
        ({}, "needs the field 'name'"),
        ({"name": 3}, "field 'name' must be a string"),
        ({"name": "echo", "priority": "high"}, "field 'priority' must be an integer"),
        ({"name": "echo", "priority": 1.5}, "field 'priority' must be an integer"),
        ({"name": "echo", "priority": 2**40}, "priority"),
        ({"name": "echo", "delay": -1}, "delay"),
        ({"name": "echo", "delay": "soon"}, "field 'delay' must be a number"),
        ({"name": "echo", "labels": ["a"]}, "field 'labels' must be an object"),
        ({"name": "echo", "labels": {"a": 1}}, "label 'a' must be a string"),
        ({"name": "echo", "labels": {"": "x"}}, "label"),
        ({"name": "echo", "params": {"x": 2**70}}, "64-bit"),
        ({"name": "echo", "surprise": 1}, "unknown field 'surprise'"),
    ],
)
def test_submit_with_invalid_input_is_422(backend, body, says):
    with served(backend) as (client, _jobs):
        message = error_of(client.post("/api/jobs", json=body), 422, "invalid_request")
        assert says in message
        assert client.get("/api/jobs").json()["jobs"] == []


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"{", "not valid JSON"),
        (b"[1]", "must be a JSON object"),
        (b'{"name": NaN}', "NaN"),
        (b"\xff", "JSON"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_422(backend, raw, says):
    with served(backend) as (client, _):
        response = client.post("/api/jobs", content=raw, headers={"content-type": "application/json"})
        assert says in error_of(response, 422, "invalid_request")


def test_get_answers_the_info_as_to_dict(backend):
    with served(backend) as (client, jobs):
        ref = submit(client, params=[1])
        wait_state(client, jobs, ref["id"], State.SUCCEEDED)
        response = client.get(f"/api/jobs/{ref['id']}")
        assert response.status_code == 200
        info = client.portal.call(jobs.get, ref["id"])
        assert response.json() == info.to_dict()


@pytest.mark.parametrize("job_id", ["no-such-job", "x" * 300])
def test_an_unknown_job_is_404_on_every_route(backend, job_id):
    with served(backend) as (client, _):
        for method, path in [
            ("GET", ""),
            ("DELETE", ""),
            ("POST", "/cancel"),
            ("POST", "/retry"),
            ("POST", "/update"),
            ("POST", "/complete"),
        ]:
            response = client.request(method, f"/api/jobs/{job_id}{path}")
            assert "no job" in error_of(response, 404, "not_found"), (method, path)
        error_of(client.post(f"/api/jobs/{job_id}/fail", json={"error": "x"}), 404, "not_found")


def test_list_filters_pages_and_says_where_the_next_page_starts(backend):
    with served(backend) as (client, jobs):
        refs = [submit(client, labels={"n": str(i % 2)}) for i in range(5)]
        for ref in refs:
            wait_state(client, jobs, ref["id"], State.SUCCEEDED)
        failed = submit(client, "boom")
        wait_state(client, jobs, failed["id"], State.FAILED)

        everything = client.get("/api/jobs").json()
        assert [job["id"] for job in everything["jobs"]] == [failed["id"], *reversed([r["id"] for r in refs])]
        assert everything["next_offset"] is None
        first = client.get("/api/jobs", params={"limit": 4}).json()
        assert len(first["jobs"]) == 4
        assert first["next_offset"] == 4
        second = client.get("/api/jobs", params={"limit": 4, "offset": 4}).json()
        assert len(second["jobs"]) == 2
        assert second["next_offset"] is None
        exact = client.get("/api/jobs", params={"limit": 6}).json()
        assert exact["next_offset"] is None

        by_state = client.get("/api/jobs", params=[("state", "failed"), ("state", "canceled")]).json()
        assert [job["id"] for job in by_state["jobs"]] == [failed["id"]]
        by_name = client.get("/api/jobs", params={"name": "boom"}).json()
        assert [job["id"] for job in by_name["jobs"]] == [failed["id"]]
        by_label = client.get("/api/jobs", params={"label": "n:1"}).json()
        assert sorted(job["id"] for job in by_label["jobs"]) == sorted([refs[1]["id"], refs[3]["id"]])
        middle = datetime.fromisoformat(everything["jobs"][2]["created_at"])
        after = client.get("/api/jobs", params={"created_after": middle.isoformat()}).json()
        assert [job["id"] for job in after["jobs"]] == [job["id"] for job in everything["jobs"][:2]]
        before = client.get("/api/jobs", params={"created_before": middle.isoformat().replace("+00:00", "Z")})
        assert [job["id"] for job in before.json()["jobs"]] == [job["id"] for job in everything["jobs"][3:]]
        assert everything["jobs"][0] == client.portal.call(jobs.get, failed["id"]).to_dict()


def test_a_label_key_given_twice_with_two_values_matches_nothing(backend):
    with served(backend) as (client, jobs):
        ref = submit(client, labels={"a": "1"})
        wait_state(client, jobs, ref["id"], State.SUCCEEDED)
        both = [("label", "a:1"), ("label", "a:2")]
        assert client.get("/api/jobs", params=both).json() == {"jobs": [], "next_offset": None}
        assert client.get("/api/stats", params=both).json()["total"] == 0
        same_twice = [("label", "a:1"), ("label", "a:1")]
        assert [job["id"] for job in client.get("/api/jobs", params=same_twice).json()["jobs"]] == [ref["id"]]
        assert "at most 64 times" in error_of(
            client.get("/api/jobs", params=[("label", f"k{i}:v") for i in range(65)]), 422, "invalid_request"
        )


def test_a_full_page_of_the_largest_size_asks_whether_more_follow(backend):
    with served(backend) as (client, jobs):
        client.portal.call(_fill, jobs, 1001)
        page = client.get("/api/jobs", params={"limit": 1000}).json()
        assert len(page["jobs"]) == 1000
        assert page["next_offset"] == 1000
        last = client.get("/api/jobs", params={"limit": 1000, "offset": 1000}).json()
        assert len(last["jobs"]) == 1
        assert last["next_offset"] is None


async def _fill(jobs: JobManager, count: int) -> None:
    for _ in range(count):
        await jobs.create("filler")


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"limit": 0}, "'limit' must be between 1 and 1000"),
        ({"limit": 1001}, "'limit' must be between 1 and 1000"),
        ({"limit": "ten"}, "'limit' must be an integer"),
        ({"offset": -1}, "'offset' must be between"),
        ({"state": "sleeping"}, "unknown state 'sleeping'"),
        ({"label": "nocolon"}, "'label' must be 'key:value'"),
        ({"label": ":x"}, "'label' must be 'key:value'"),
        ({"created_after": "yesterday"}, "ISO 8601"),
        ({"created_before": "2026-01-01T00:00:00"}, "UTC offset"),
        ([("name", "a"), ("name", "b")], "'name' may be given once"),
        ({"name": ""}, "name"),
    ],
)
def test_list_with_invalid_filters_is_422(backend, params, says):
    with served(backend) as (client, _):
        assert says in error_of(client.get("/api/jobs", params=params), 422, "invalid_request")


def test_cancel_answers_the_info_and_409_once_done(backend):
    with served(backend) as (client, jobs):
        running = submit(client, "hang")
        wait_state(client, jobs, running["id"], State.RUNNING)
        response = client.post(f"/api/jobs/{running['id']}/cancel")
        assert response.status_code == 200
        assert response.json()["state"] in {"canceling", "canceled"}
        assert response.json()["id"] == running["id"]
        wait_state(client, jobs, running["id"], State.CANCELED)
        message = error_of(client.post(f"/api/jobs/{running['id']}/cancel"), 409, "conflict")
        assert "already canceled" in message

        waiting = submit(client, delay=3600)
        response = client.post(f"/api/jobs/{waiting['id']}/cancel")
        assert response.status_code == 200
        assert response.json()["state"] == "canceled"

        done = submit(client)
        wait_state(client, jobs, done["id"], State.SUCCEEDED)
        assert "already succeeded" in error_of(client.post(f"/api/jobs/{done['id']}/cancel"), 409, "conflict")


def test_retry_answers_the_ref_and_409_unless_failed_or_canceled(backend):
    with served(backend) as (client, jobs):
        failed = submit(client, "boom")
        wait_state(client, jobs, failed["id"], State.FAILED)
        response = client.post(f"/api/jobs/{failed['id']}/retry")
        assert response.status_code == 200
        assert response.json()["id"] == failed["id"]
        assert set(response.json()) == {"id", "name", "scheduled_at"}
        info = wait_state(client, jobs, failed["id"], State.FAILED)
        assert info.attempts == 2

        done = submit(client)
        wait_state(client, jobs, done["id"], State.SUCCEEDED)
        assert "not failed or canceled" in error_of(
            client.post(f"/api/jobs/{done['id']}/retry"), 409, "conflict"
        )
        running = submit(client, "hang")
        wait_state(client, jobs, running["id"], State.RUNNING)
        error_of(client.post(f"/api/jobs/{running['id']}/retry"), 409, "conflict")


def test_delete_answers_204_and_409_when_not_done(backend):
    with served(backend) as (client, jobs):
        running = submit(client, "hang")
        wait_state(client, jobs, running["id"], State.RUNNING)
        error_of(client.delete(f"/api/jobs/{running['id']}"), 409, "conflict")
        done = submit(client)
        wait_state(client, jobs, done["id"], State.SUCCEEDED)
        response = client.delete(f"/api/jobs/{done['id']}")
        assert response.status_code == 204
        assert response.content == b""
        error_of(client.get(f"/api/jobs/{done['id']}"), 404, "not_found")


def test_stats_answers_the_statistics_filtered_by_name_and_label(backend):
    with served(backend) as (client, jobs):
        ok = submit(client, labels={"team": "a"})
        bad = submit(client, "boom", labels={"team": "b"})
        wait_state(client, jobs, ok["id"], State.SUCCEEDED)
        wait_state(client, jobs, bad["id"], State.FAILED)
        stats = client.get("/api/stats")
        assert stats.status_code == 200
        assert stats.json() == client.portal.call(jobs.stats).to_dict()
        assert stats.json()["by_state"] == {
            "created": 0,
            "running": 0,
            "canceling": 0,
            "succeeded": 1,
            "failed": 1,
            "canceled": 0,
        }
        assert client.get("/api/stats", params={"name": "boom"}).json()["total"] == 1
        team_a = client.get("/api/stats", params={"label": "team:a"}).json()
        assert team_a["total"] == 1
        assert team_a["success_rate"] == 1.0
        assert "'label' must be" in error_of(
            client.get("/api/stats", params={"label": "x"}), 422, "invalid_request"
        )


def test_external_jobs_report_over_http(backend):
    with served(backend) as (client, _jobs):
        response = client.post(
            "/api/external",
            json={"name": "export", "params": {"rows": 3}, "labels": {"k": "v"}, "message": "queued"},
        )
        assert response.status_code == 201
        ref = response.json()
        assert ref["name"] == "export"
        assert client.get(f"/api/jobs/{ref['id']}").json()["state"] == "created"

        update = client.post(f"/api/jobs/{ref['id']}/update", json={"progress": 0.25, "message": "a quarter"})
        assert update.status_code == 200
        assert update.json()["state"] == "running"
        assert update.json()["progress"] == 0.25
        assert update.json()["message"] == "a quarter"
        assert client.post(f"/api/jobs/{ref['id']}/update").status_code == 200  # a sign of life
        assert "progress" in error_of(
            client.post(f"/api/jobs/{ref['id']}/update", json={"progress": 2}), 422, "invalid_request"
        )
        done = client.post(f"/api/jobs/{ref['id']}/complete", json={"result": {"rows": 3}})
        assert done.status_code == 200
        assert done.json()["state"] == "succeeded"
        assert done.json()["result"] == {"rows": 3}
        for path, body in [("update", {"progress": 1}), ("complete", {}), ("fail", {"error": "x"})]:
            error_of(client.post(f"/api/jobs/{ref['id']}/{path}", json=body), 409, "conflict")

        other = client.post("/api/external", json={"name": "export"}).json()
        failed = client.post(f"/api/jobs/{other['id']}/fail", json={"error": "disk full"})
        assert failed.status_code == 200
        assert failed.json()["state"] == "failed"
        assert failed.json()["error"] == "disk full"
        assert failed.json()["error_type"] is None
        assert failed.json()["started_at"] is not None


def test_a_canceled_external_job_answers_its_reporter_409(backend):
    with served(backend) as (client, _jobs):
        ref = client.post("/api/external", json={"name": "export"}).json()
        client.post(f"/api/jobs/{ref['id']}/update", json={"progress": 0.1})
        assert client.post(f"/api/jobs/{ref['id']}/cancel").json()["state"] == "canceling"
        assert "cancel" in error_of(client.post(f"/api/jobs/{ref['id']}/update", json={}), 409, "conflict")
        assert client.get(f"/api/jobs/{ref['id']}").json()["state"] == "canceled"


def test_reports_on_a_job_that_is_not_external_are_409(backend):
    with served(backend) as (client, jobs):
        running = submit(client, "hang")
        wait_state(client, jobs, running["id"], State.RUNNING)
        error_of(client.post(f"/api/jobs/{running['id']}/update", json={"progress": 0.9}), 409, "conflict")


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        ("/api/external", {}, "needs the field 'name'"),
        ("/api/external", {"name": "x", "stale_after": 0}, "stale_after"),
        ("/api/external", {"name": "x", "message": 5}, "field 'message' must be a string"),
        ("/api/external", {"name": "x", "id": "mine"}, "unknown field 'id'"),
    ],
)
def test_external_create_with_invalid_input_is_422(backend, path, body, says):
    with served(backend) as (client, _):
        assert says in error_of(client.post(path, json=body), 422, "invalid_request")


def test_fail_needs_an_error_string(backend):
    with served(backend) as (client, _):
        ref = client.post("/api/external", json={"name": "export"}).json()
        error_of(client.post(f"/api/jobs/{ref['id']}/fail", json={}), 422, "invalid_request")
        error_of(client.post(f"/api/jobs/{ref['id']}/fail", json={"error": 1}), 422, "invalid_request")
        infinite = client.post(f"/api/jobs/{ref['id']}/complete", content=b'{"result": {"x": Infinity}}')
        assert "Infinity" in error_of(infinite, 422, "invalid_request")
        deep = client.post(f"/api/jobs/{ref['id']}/complete", json={"result": _deep(70)})
        assert "nested" in error_of(deep, 422, "invalid_request")


def _deep(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


def test_unknown_routes_and_methods_answer_json_errors(backend):
    with served(backend) as (client, _):
        error_of(client.get("/api/nothing"), 404, "not_found")
        response = client.put("/api/jobs")
        error_of(response, 405, "method_not_allowed")
        assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
        assert set(client.patch("/api/jobs/x").headers["allow"].split(", ")) == {"GET", "HEAD", "DELETE"}


def test_a_manager_that_is_not_open_answers_503(backend):
    from anyjob.web import create_app

    app = create_app(JobManager())
    with TestClient(app, backend=backend) as client:
        assert "cannot list jobs" in error_of(client.get("/api/jobs"), 503, "unavailable")
        error_of(client.get("/api/stats"), 503, "unavailable")
        error_of(client.post("/api/jobs", json={"name": "x"}), 503, "unavailable")
        error_of(client.get("/api/events"), 503, "unavailable")


def test_the_dashboard_page_and_its_files(backend):
    with served(backend) as (client, _):
        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert '<base href="/">' in page.text
        assert 'role="tablist"' in page.text
        script = client.get("/static/dashboard.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        assert "EventSource" in script.text
        assert client.get("/static/dashboard.css").headers["content-type"].startswith("text/css")
        error_of(client.get("/static/secrets.py"), 404, "not_found")
    with served(backend, dashboard=False) as (client, _):
        error_of(client.get("/"), 404, "not_found")
        assert "/" not in client.get("/openapi.json").json()["paths"]


def test_mounted_under_a_prefix_every_path_is_relative_to_it(backend):
    with served(backend, mount="/jobs") as (client, _jobs):
        ref = client.post("/jobs/api/jobs", json={"name": "echo"}).json()
        assert client.get(f"/jobs/api/jobs/{ref['id']}").status_code == 200
        assert '<base href="/jobs/">' in client.get("/jobs/").text
        document = client.get("/jobs/openapi.json").json()
        assert document["servers"] == [{"url": "/jobs"}]
        assert client.get("/api/jobs").status_code == 404  # outside the mount: the outer app's answer


def test_it_mounts_in_fastapi_with_the_manager_in_the_lifespan(backend):
    import contextlib

    from fastapi import FastAPI

    from anyjob.web import create_app

    jobs = register_all(JobManager())

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async with jobs:
            yield

    app = FastAPI(lifespan=lifespan)
    app.mount("/jobs", create_app(jobs))

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    with TestClient(app, backend=backend) as client:
        ref = client.post("/jobs/api/jobs", json={"name": "echo", "params": 7}).json()
        info = wait_state(client, jobs, ref["id"], State.SUCCEEDED)
        assert info.result == 7
        assert client.get(f"/jobs/api/jobs/{ref['id']}").json()["result"] == 7
        assert client.get("/hello").json() == {"hello": "world"}


def test_create_app_refuses_bad_arguments():
    from anyjob.web import create_app

    jobs = JobManager()

    async def auth(request):
        return "me"

    with pytest.raises(TypeError, match="JobManager"):
        create_app(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="auth must be"):
        create_app(jobs, auth="me")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="owner_label needs auth"):
        create_app(jobs, owner_label="owner")
    with pytest.raises(ValueError, match="owner_label must be"):
        create_app(jobs, auth=auth, owner_label="")
    with pytest.raises(ValueError, match="keepalive"):
        create_app(jobs, keepalive=0)
    with pytest.raises(ValueError, match="replay"):
        create_app(jobs, replay=0)


def test_the_public_names_of_anyjob_web():
    import anyjob.web

    public = {name for name in dir(anyjob.web) if not name.startswith("_")}
    assert set(anyjob.web.__all__) == public == {"Auth", "create_app"}
    assert anyjob.web.create_app.__doc__


def test_head_requests_answer_headers_only(backend):
    with served(backend) as (client, _):
        page = client.head("/")
        assert page.status_code == 200
        assert page.content == b""
        assert client.head("/api/jobs").status_code == 200
        events = client.head("/api/events")
        assert events.status_code == 200
        assert events.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert events.content == b""
