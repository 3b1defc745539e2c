"""auth and owner scoping: no principal is a 401, another owner's job a 404, one's own jobs work."""

from __future__ import annotations

import pytest
from tests.web.web_support import error_of, served, wait_state

from anyjob import State

USERS = {"alice-token": "alice", "bob-token": "bob"}


async def by_token(request):
    return USERS.get(request.headers.get("authorization", "").removeprefix("Bearer "))


ALICE = {"authorization": "Bearer alice-token"}
BOB = {"authorization": "Bearer bob-token"}

EVERY_ROUTE = [
    ("GET", "/"),
    ("GET", "/api/jobs"),
    ("POST", "/api/jobs"),
    ("GET", "/api/jobs/x"),
    ("DELETE", "/api/jobs/x"),
    ("POST", "/api/jobs/x/cancel"),
    ("POST", "/api/jobs/x/retry"),
    ("POST", "/api/jobs/x/update"),
    ("POST", "/api/jobs/x/complete"),
    ("POST", "/api/jobs/x/fail"),
    ("GET", "/api/stats"),
    ("GET", "/api/events"),
    ("POST", "/api/external"),
    ("GET", "/openapi.json"),  # it lists the registered names
]


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong"}])
def test_without_a_principal_every_route_is_401(backend, headers):
    with served(backend, auth=by_token, owner_label="owner") as (client, _):
        for method, path in EVERY_ROUTE:
            response = client.request(method, path, headers=headers, json={"name": "echo"})
            assert "authentication required" in error_of(response, 401, "unauthorized"), (method, path)
        assert client.get("/openapi.json", headers=ALICE).status_code == 200  # for a principal only


def test_jobs_made_through_the_api_belong_to_their_principal(backend):
    with served(backend, auth=by_token, owner_label="owner") as (client, jobs):
        ref = client.post(
            "/api/jobs", json={"name": "echo", "labels": {"owner": "mallory", "k": "v"}}, headers=ALICE
        )
        info = wait_state(client, jobs, ref.json()["id"], State.SUCCEEDED)
        assert dict(info.labels) == {"owner": "alice", "k": "v"}
        external = client.post("/api/external", json={"name": "export"}, headers=BOB).json()
        assert client.get(f"/api/jobs/{external['id']}", headers=BOB).json()["labels"] == {"owner": "bob"}


def test_another_owners_job_is_404_on_every_route(backend):
    with served(backend, auth=by_token, owner_label="owner") as (client, jobs):
        done = client.post("/api/jobs", json={"name": "boom"}, headers=ALICE).json()
        wait_state(client, jobs, done["id"], State.FAILED)
        external = client.post("/api/external", json={"name": "export"}, headers=ALICE).json()
        for job_id in (done["id"], external["id"]):
            for method, path in [
                ("GET", ""),
                ("DELETE", ""),
                ("POST", "/cancel"),
                ("POST", "/retry"),
                ("POST", "/update"),
                ("POST", "/complete"),
            ]:
                response = client.request(method, f"/api/jobs/{job_id}{path}", headers=BOB)
                error_of(response, 404, "not_found")
            error_of(
                client.post(f"/api/jobs/{job_id}/fail", json={"error": "x"}, headers=BOB), 404, "not_found"
            )
        # Nothing Bob tried changed anything.
        assert client.get(f"/api/jobs/{done['id']}", headers=ALICE).json()["state"] == "failed"
        assert client.get(f"/api/jobs/{external['id']}", headers=ALICE).json()["state"] == "created"


def test_a_principal_lists_and_counts_only_their_jobs(backend):
    with served(backend, auth=by_token, owner_label="owner") as (client, jobs):
        mine = client.post("/api/jobs", json={"name": "echo"}, headers=ALICE).json()
        theirs = client.post("/api/jobs", json={"name": "echo"}, headers=BOB).json()
        client.portal.call(jobs.create, "unowned")  # made outside the API: nobody's
        wait_state(client, jobs, mine["id"], State.SUCCEEDED)
        wait_state(client, jobs, theirs["id"], State.SUCCEEDED)
        assert [job["id"] for job in client.get("/api/jobs", headers=ALICE).json()["jobs"]] == [mine["id"]]
        assert [job["id"] for job in client.get("/api/jobs", headers=BOB).json()["jobs"]] == [theirs["id"]]
        assert client.get("/api/stats", headers=ALICE).json()["total"] == 1
        sneaky = client.get("/api/jobs", params={"label": "owner:bob"}, headers=ALICE).json()
        assert sneaky == {"jobs": [], "next_offset": None}
        stats = client.get("/api/stats", params={"label": "owner:bob"}, headers=ALICE).json()
        assert stats["total"] == 0
        assert set(stats["by_state"].values()) == {0}
        own = client.get("/api/jobs", params={"label": "owner:alice"}, headers=ALICE).json()
        assert [job["id"] for job in own["jobs"]] == [mine["id"]]


def test_a_principal_acts_on_their_own_jobs(backend):
    with served(backend, auth=by_token, owner_label="owner") as (client, jobs):
        running = client.post("/api/jobs", json={"name": "hang"}, headers=ALICE).json()
        wait_state(client, jobs, running["id"], State.RUNNING)
        assert client.post(f"/api/jobs/{running['id']}/cancel", headers=ALICE).status_code == 200
        wait_state(client, jobs, running["id"], State.CANCELED)
        assert client.post(f"/api/jobs/{running['id']}/retry", headers=ALICE).status_code == 200
        wait_state(client, jobs, running["id"], State.RUNNING)
        client.post(f"/api/jobs/{running['id']}/cancel", headers=ALICE)
        wait_state(client, jobs, running["id"], State.CANCELED)
        assert client.delete(f"/api/jobs/{running['id']}", headers=ALICE).status_code == 204
        external = client.post("/api/external", json={"name": "export"}, headers=ALICE).json()
        assert (
            client.post(
                f"/api/jobs/{external['id']}/update", json={"progress": 0.5}, headers=ALICE
            ).status_code
            == 200
        )
        assert (
            client.post(f"/api/jobs/{external['id']}/complete", headers=ALICE).json()["state"] == "succeeded"
        )


def test_auth_without_owner_label_only_requires_a_principal(backend):
    with served(backend, auth=by_token) as (client, jobs):
        ref = client.post("/api/jobs", json={"name": "echo"}, headers=ALICE).json()
        wait_state(client, jobs, ref["id"], State.SUCCEEDED)
        assert client.get(f"/api/jobs/{ref['id']}", headers=BOB).status_code == 200
        assert client.get(f"/api/jobs/{ref['id']}", headers=BOB).json()["labels"] == {}
        error_of(client.get(f"/api/jobs/{ref['id']}"), 401, "unauthorized")


def test_an_auth_that_returns_something_else_is_a_server_error(backend):
    async def broken(request):
        return 42

    with (
        served(backend, auth=broken) as (client, _),
        pytest.raises(TypeError, match="auth must return a str"),
    ):
        client.get("/api/jobs")


CROSS_SITE = [
    {"sec-fetch-site": "cross-site", "origin": "https://evil.example"},
    {"origin": "https://evil.example"},  # an older browser: no Sec-Fetch-Site, a foreign Origin
]


@pytest.mark.parametrize("foreign", CROSS_SITE)
def test_changes_asked_by_another_sites_page_are_refused(backend, foreign):
    """CSRF: a page elsewhere posting through the caller's browser (cookies sent along) gets a 403."""
    with served(backend) as (client, _):
        for method, path in [
            ("POST", "/api/jobs"),
            ("POST", "/api/jobs/x/cancel"),
            ("DELETE", "/api/jobs/x"),
        ]:
            answer = client.request(
                method, path, content=b'{"name": "echo"}', headers={**foreign, "content-type": "text/plain"}
            )
            error_of(answer, 403, "forbidden")
        assert client.get("/api/jobs", headers=foreign).status_code == 200  # reading is not a change
        same_site = {"sec-fetch-site": "same-origin", "origin": "http://testserver"}
        answer = client.post("/api/jobs", json={"name": "echo"}, headers=same_site)  # the dashboard
        assert answer.status_code == 201, answer.text
        answer = client.post("/api/jobs", json={"name": "echo"}, headers={"origin": "http://testserver"})
        assert answer.status_code == 201, answer.text
        assert client.post("/api/jobs", json={"name": "echo"}).status_code == 201  # a program: no headers
