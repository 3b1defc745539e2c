"""schemathesis over /openapi.json against a real server: no server error, no schema violation.

Every operation but the endless stream is fuzzed with data generated from the document,
valid (positive) and invalid (negative), bounded (a few dozen examples each) and
derandomized so a run is repeatable; every schemathesis check runs on each answer
(server errors, documented status codes, content types and bodies conforming).
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from tests.web.server_support import Server

pytestmark = pytest.mark.timeout(300)

OPERATIONS = [
    ("GET", "/"),
    ("GET", "/api/jobs"),
    ("POST", "/api/jobs"),
    ("GET", "/api/jobs/{id}"),
    ("DELETE", "/api/jobs/{id}"),
    ("POST", "/api/jobs/{id}/cancel"),
    ("POST", "/api/jobs/{id}/retry"),
    ("POST", "/api/jobs/{id}/update"),
    ("POST", "/api/jobs/{id}/complete"),
    ("POST", "/api/jobs/{id}/fail"),
    ("GET", "/api/stats"),
    ("POST", "/api/external"),
    ("GET", "/openapi.json"),
]


@pytest.fixture(scope="module")
def api_server(tmp_path_factory):
    running = Server(tmp_path_factory.mktemp("schemathesis") / "jobs.db")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def api_schema(api_server):
    return schemathesis.openapi.from_url(f"{api_server.url}/openapi.json")


def test_the_document_lists_every_route_of_the_contract(api_schema):
    listed = {
        (method.upper(), path)
        for path, item in api_schema.raw_schema["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert listed == {*OPERATIONS, ("GET", "/api/events")}
    assert api_schema.raw_schema["openapi"] == "3.1.0"


#: Operations some input of which is invalid (a path id is any string: those have none).
NEGATABLE = [
    ("GET", "/api/jobs"),
    ("POST", "/api/jobs"),
    ("POST", "/api/jobs/{id}/update"),
    ("POST", "/api/jobs/{id}/complete"),
    ("POST", "/api/jobs/{id}/fail"),
    ("GET", "/api/stats"),
    ("POST", "/api/external"),
]
CASES = [
    *[
        pytest.param(m, p, schemathesis.GenerationMode.POSITIVE, id=f"{m} {p} positive")
        for m, p in OPERATIONS
    ],
    *[pytest.param(m, p, schemathesis.GenerationMode.NEGATIVE, id=f"{m} {p} negative") for m, p in NEGATABLE],
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_the_api_matches_its_openapi_document(api_schema, api_server, method, path, mode):
    operation = api_schema[path][method]

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(
        max_examples=30,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    def check(case):
        case.call_and_validate(base_url=api_server.url)

    check()


def test_sequences_of_calls_following_the_documents_links(api_schema):
    """Submit or create, then act on that job (get, cancel, retry, delete, report): every answer
    still as documented. The links of ``/openapi.json`` say which calls follow which."""
    machine = api_schema.as_state_machine()
    machine.run(
        settings=hypothesis.settings(
            max_examples=25,
            stateful_step_count=6,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
