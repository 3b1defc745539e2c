"""The dashboard in a real browser: Playwright for Python driving Debian's Chromium, headless.

The server is ``serve_app.py`` in a subprocess (uvicorn on loopback, an SQLite file); the
tests make jobs through the HTTP API and watch the page follow them live over the stream.
Every wait is Playwright's auto-waiting ``expect`` (generous timeouts), never a sleep.
"""

from __future__ import annotations

import os
import pathlib
import shutil

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from tests.web.server_support import ROOT, Server, server

pytestmark = pytest.mark.timeout(120)

CHROMIUM = "/usr/bin/chromium"
WAIT_MS = 15_000  # only catches a hang


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def running(tmp_path):
    with server(tmp_path / "jobs.db") as started:
        yield started


@pytest.fixture
def page(browser: Browser, running: Server):
    context = browser.new_context(viewport={"width": 1200, "height": 760})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.goto(f"{running.url}/")
    expect(opened.locator("#live")).to_have_text("live", timeout=WAIT_MS)
    yield opened
    context.close()
    assert errors == [], errors


@pytest.fixture
def api(running: Server):
    with httpx.Client(base_url=running.url, timeout=20.0) as client:
        yield client


def row(page: Page, job_id: str):
    return page.locator(f'tr[data-job="{job_id}"]')


def tab(page: Page, name: str):
    return page.get_by_role("tab", name=name)


def test_a_jobs_bar_follows_its_progress_to_100_percent(page, api):
    ref = api.post("/api/external", json={"name": "export", "labels": {"team": "data"}}).json()
    api.post(f"/api/jobs/{ref['id']}/update", json={"progress": 0.4, "message": "4 of 10 files"})
    bar = row(page, ref["id"]).get_by_role("progressbar", name="Progress of export")
    expect(bar).to_have_attribute("aria-valuenow", "40", timeout=WAIT_MS)
    expect(bar).to_have_attribute("aria-valuetext", "40 % (4 of 10 files)")
    expect(row(page, ref["id"])).to_contain_text("running")
    expect(row(page, ref["id"])).to_contain_text("team: data")
    api.post(f"/api/jobs/{ref['id']}/update", json={"progress": 1.0, "message": "all files"})
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=WAIT_MS)
    expect(row(page, ref["id"])).to_contain_text("100 % all files")

    api.post(f"/api/jobs/{ref['id']}/complete", json={"result": {"files": 10}})
    expect(row(page, ref["id"])).to_have_count(0, timeout=WAIT_MS)  # it left the active tab
    expect(page.locator("#count-succeeded")).to_have_text("1", timeout=WAIT_MS)

    submitted = api.post("/api/jobs", json={"name": "steps", "params": {"steps": 5, "pause": 0.05}}).json()
    expect(page.locator("#count-succeeded")).to_have_text("2", timeout=WAIT_MS)
    tab(page, "Succeeded").click()
    for job_id in (ref["id"], submitted["id"]):
        expect(row(page, job_id).get_by_role("progressbar")).to_have_attribute(
            "aria-valuenow", "100", timeout=WAIT_MS
        )
        expect(row(page, job_id)).to_contain_text("succeeded")


def test_cancel_a_running_job(page, api):
    ref = api.post("/api/jobs", json={"name": "hang"}).json()
    expect(row(page, ref["id"])).to_contain_text("running", timeout=WAIT_MS)
    page.get_by_role("button", name=f"Cancel job hang ({ref['id']})").click()
    expect(row(page, ref["id"])).to_have_count(0, timeout=WAIT_MS)
    tab(page, "Canceled").click()
    expect(row(page, ref["id"])).to_contain_text("canceled", timeout=WAIT_MS)
    expect(page.locator("#count-canceled")).to_have_text("1")
    assert api.get(f"/api/jobs/{ref['id']}").json()["state"] == "canceled"


def test_retry_a_failed_job_and_read_its_detail(page, api):
    ref = api.post("/api/jobs", json={"name": "flaky"}).json()
    expect(page.locator("#count-failed")).to_have_text("1", timeout=WAIT_MS)
    tab(page, "Failed").click()
    expect(row(page, ref["id"])).to_contain_text("failed", timeout=WAIT_MS)

    page.get_by_role("button", name=f"Details of job flaky ({ref['id']})").click()
    detail = page.locator("#detail")
    expect(detail).to_be_visible()
    expect(page.locator("#detail-error")).to_have_text("RuntimeError: the first attempt always fails")
    expect(page.locator("#detail-traceback")).to_contain_text("Traceback (most recent call last)")
    expect(detail.locator('[data-field="attempts"]')).to_have_text("1")

    page.get_by_role("button", name=f"Retry job flaky ({ref['id']})").click()
    expect(page.locator("#count-succeeded")).to_have_text("1", timeout=WAIT_MS)
    expect(detail.locator('[data-field="state"]')).to_have_text("succeeded", timeout=WAIT_MS)
    expect(detail.locator('[data-field="attempts"]')).to_have_text("2")
    expect(page.locator("#detail-result")).to_have_text('"fine the second time"')
    tab(page, "Succeeded").click()
    expect(row(page, ref["id"])).to_contain_text("succeeded", timeout=WAIT_MS)

    page.get_by_role("button", name=f"Delete job flaky ({ref['id']})").click()
    expect(row(page, ref["id"])).to_have_count(0, timeout=WAIT_MS)
    assert api.get(f"/api/jobs/{ref['id']}").status_code == 404


def test_search_paging_and_the_keyboard(page, api):
    for index in range(30):
        api.post("/api/external", json={"name": f"batch-{index % 3}", "labels": {"n": str(index)}})
    scheduled = tab(page, "Scheduled")
    expect(page.locator("#count-scheduled")).to_have_text("30", timeout=WAIT_MS)
    tab(page, "Active").focus()
    page.keyboard.press("ArrowRight")
    expect(scheduled).to_have_attribute("aria-selected", "true")
    expect(scheduled).to_be_focused()
    expect(page.locator("#rows tr")).to_have_count(25, timeout=WAIT_MS)  # one server-side page
    page.get_by_role("button", name="Next page").click()
    expect(page.locator("#rows tr")).to_have_count(5, timeout=WAIT_MS)
    expect(page.get_by_role("button", name="Next page")).to_be_disabled()

    page.get_by_label("Search by").select_option("name")
    page.get_by_label("Search for").fill("batch-1")
    page.get_by_label("Search for").press("Enter")
    expect(page.locator("#rows tr")).to_have_count(10, timeout=WAIT_MS)
    expect(page.locator("#count-scheduled")).to_have_text("10", timeout=WAIT_MS)
    page.get_by_label("Search by").select_option("label")
    page.get_by_label("Search for").fill("n:7")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#rows tr")).to_have_count(1, timeout=WAIT_MS)
    expect(page.locator("#rows")).to_contain_text("batch-1")
    job_id = page.locator("#rows tr").get_attribute("data-job")
    page.get_by_label("Search by").select_option("id")
    page.get_by_label("Search for").fill(job_id)
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#rows tr")).to_have_count(1, timeout=WAIT_MS)
    page.get_by_role("button", name="Clear").click()
    expect(page.locator("#rows tr")).to_have_count(25, timeout=WAIT_MS)


def test_the_live_indicator_follows_the_server_going_and_coming_back(browser, tmp_path):
    db = tmp_path / "jobs.db"
    first = Server(db)
    try:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{first.url}/")
        live = page.get_by_role("status")
        expect(live).to_have_text("live", timeout=WAIT_MS)
        first.stop()
        expect(live).to_have_text("reconnecting", timeout=WAIT_MS)
        second = Server(db, port=first.port)
        try:
            expect(live).to_have_text("live", timeout=WAIT_MS)
            with httpx.Client(base_url=second.url, timeout=20.0) as api:
                ref = api.post("/api/jobs", json={"name": "hang"}).json()
            expect(row(page, ref["id"])).to_contain_text("running", timeout=WAIT_MS)  # live again
        finally:
            second.stop()
        context.close()
    finally:
        first.stop()


def test_a_screenshot_of_the_dashboard(page, api, tmp_path):
    for steps in (400, 300, 200):
        api.post(
            "/api/jobs",
            json={"name": "steps", "params": {"steps": steps, "pause": 0.02}, "labels": {"team": "data"}},
        )
    ref = api.post("/api/external", json={"name": "nightly-export", "labels": {"team": "ops"}}).json()
    api.post(f"/api/jobs/{ref['id']}/update", json={"progress": 0.62, "message": "62 of 100 tables"})
    api.post("/api/jobs", json={"name": "flaky"})
    api.post("/api/jobs", json={"name": "echo", "params": {"n": 1}})
    expect(page.locator("#rows tr")).to_have_count(4, timeout=WAIT_MS)
    expect(page.locator("#count-failed")).to_have_text("1", timeout=WAIT_MS)
    expect(row(page, ref["id"]).get_by_role("progressbar")).to_have_attribute("aria-valuenow", "62")
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot))
    assert shot.read_bytes().startswith(b"\x89PNG")
    if os.environ.get("ANYJOB_WRITE_SCREENSHOT"):  # refresh the one committed for the README
        shutil.copyfile(shot, pathlib.Path(ROOT, "docs", "dashboard.png"))
