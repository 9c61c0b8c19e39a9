"""The web page as a person uses it: a real `mmserve serve` of the offline tiny profile
(deployments/tiny.yaml) with an API key, driven in headless Chromium (Debian's `chromium`,
through Playwright). The page asks for the key, runs `caption` on an uploaded image, shows the
API's error next to the field for a file that is not an image, runs a retrieval workflow whose
thumbnails load, browses, searches and adds to a collection, chats with an agent, runs a
workflow as a job and sees it succeed in the Jobs tab, and cancels a queued and a running job
there (their captioner replica stopped meanwhile, so neither can finish first).
Screenshots of each screen go to .artifacts/web/ (git-ignored). The server is the one the
client, MCP and web page modules share (shared_app.py)."""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright
from serve_support import ROOT, descendants, png_base64
from shared_app import KEY, TinyApp

from mmserve.config import AppConfig

pytestmark = pytest.mark.serve

IMAGES = ROOT / "examples" / "images"
SHOTS = ROOT / ".artifacts" / "web"
#: Every <img> in ``selector`` has loaded real pixels.
AUTH = {"authorization": f"Bearer {KEY}"}
#: The title Ray gives the captioner's Serve replica process (app ``mmserve``).
CAPTIONER = re.compile(r"ray::ServeReplica:mmserve:captioner(?![\w:])")
LOADED = "s => { const all = [...document.querySelectorAll(s)]; return all.length > 0 && all.every(i => i.complete && i.naturalWidth > 0); }"  # noqa: E501


def _chromium() -> str:
    found = os.environ.get("MMSERVE_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail("no `chromium` on PATH: `apt-get install chromium` (.ci/run installs it)")
    return found


@pytest.fixture(scope="module")
def server(keyed_tiny_app: TinyApp) -> str:
    """The shared `mmserve serve` of the tiny profile with the key (shared_app.py), with this
    module's collections written (again, should another module have changed them)."""
    url = keyed_tiny_app.url
    items = [
        {
            "id": p.stem,
            "image": base64.b64encode(p.read_bytes()).decode(),
            "metadata": {"file": p.name},
        }
        for p in sorted(IMAGES.glob("*.png"))
    ]
    headers = {"authorization": f"Bearer {KEY}"}
    added = httpx.post(
        f"{url}/v1/collections/images/items",
        json={"items": items},
        headers=headers,
        timeout=120,
    )
    assert added.status_code == 200, added.text
    first = {"items": items[:1]}
    added = httpx.post(
        f"{url}/v1/collections/uploads/items", json=first, headers=headers, timeout=120
    )
    assert added.status_code == 200, added.text
    return url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    """A fresh tab at 1280 px on the page, the key typed into the dialog it asks with."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.goto(server + "/")
    tab.wait_for_selector("#key-dialog[open]")
    tab.fill("#key-input", KEY)
    tab.press("#key-input", "Enter")
    tab.wait_for_selector('[data-workflow="caption"]')
    yield tab
    context.close()
    assert not problems, problems


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_caption_runs_on_an_uploaded_image_with_live_steps_and_a_trace(page: Page) -> None:
    page.click('[data-workflow="caption"]')
    page.set_input_files("#in-caption-image", str(IMAGES / "red_circle.png"))
    page.wait_for_selector('[data-field="image"] .preview img')
    page.click("#run-button")
    caption = page.wait_for_selector('[data-output="caption"] .text-output', timeout=180_000)
    assert caption.inner_text().strip()
    assert page.inner_text('#run-progress [data-step="caption"]').startswith("caption")
    assert "ok" in page.inner_text('#run-progress [data-step="caption"] .step-status')
    assert page.inner_text('.timeline [data-step="caption"] .step-status') == "ok"
    assert "ms" in page.inner_text('.timeline [data-step="caption"] .step-details')
    _shot(page, "workflow-caption")


def test_a_file_that_is_not_an_image_gets_the_apis_message_next_to_the_field(page: Page) -> None:
    page.click('[data-workflow="caption"]')
    notes = {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a picture"}
    page.set_input_files("#in-caption-image", notes)
    page.click("#run-button")
    error = page.wait_for_selector('[data-field="image"] .error:not([hidden])', timeout=120_000)
    message = error.inner_text()
    assert "input 'image'" in message and "not an image" in message
    assert "Traceback" not in page.content()
    assert page.inner_text("#run-result").strip() == ""
    _shot(page, "workflow-error")


def test_a_retrieval_workflow_shows_match_thumbnails_that_load(page: Page) -> None:
    page.click('[data-workflow="search_images"]')
    page.fill("#in-search_images-text", "a red circle")
    page.fill("#in-search_images-top_k", "3")
    page.click("#run-button")
    page.wait_for_selector('[data-output="matches"] .card', timeout=180_000)
    page.wait_for_function(LOADED, arg='[data-output="matches"] img')
    cards = page.query_selector_all('[data-output="matches"] .card')
    assert len(cards) == 3
    assert all("score" in card.inner_text() and "file" in card.inner_text() for card in cards)
    _shot(page, "workflow-retrieval")
    # the README's picture (docs/images/web.png is a copy): the first screen at 1280 px
    page.screenshot(path=str(SHOTS / "readme-1280.png"))


def test_collections_browse_search_by_text_and_add_by_upload(page: Page) -> None:
    page.click("#tab-collections")
    row = page.wait_for_selector('[data-collection="images"]')
    assert "image" in row.inner_text() and "4" in row.inner_text() and "clip" in row.inner_text()
    row.query_selector("button").click()
    page.wait_for_function(LOADED, arg="#browse img.thumb")
    assert len(page.query_selector_all("#browse .card")) == 4
    page.fill("#search-images-text", "a yellow sun")
    page.click('form.search button[type="submit"]')
    page.wait_for_function(LOADED, arg=".search-results img", timeout=120_000)
    assert len(page.query_selector_all(".search-results .card")) == 4
    _shot(page, "collections-search")

    page.click('[data-collection="uploads"] button')
    page.wait_for_function(LOADED, arg="#browse img.thumb")
    rest = [str(p) for p in sorted(IMAGES.glob("*.png"))[1:]]
    page.set_input_files("#add-uploads-files", rest)
    page.click('form.add button[type="submit"]')
    page.wait_for_function(
        "() => { const bar = document.querySelector('#add-uploads-progress');"
        " return bar.max === 3 && bar.value === 3; }",
        timeout=180_000,
    )
    page.wait_for_function("() => document.querySelectorAll('#browse .card').length === 4")
    page.wait_for_function(LOADED, arg="#browse img.thumb")
    assert page.inner_text("#collection-count") == "image · 4 items"
    page.wait_for_function(
        "() => document.querySelector('[data-collection=uploads] td.num').textContent === '4'"
    )
    _shot(page, "collections-added")


def test_the_agent_chat_shows_the_tool_call_and_the_answer(page: Page) -> None:
    page.click("#tab-agents")
    page.fill("#chat-text", "please caption this picture")
    page.set_input_files("#chat-image", str(IMAGES / "blue_square.png"))
    page.click('#chat-form button[type="submit"]')
    tool = page.wait_for_selector("#chat-log .tool", timeout=180_000)
    assert "tool caption · ok" in tool.inner_text()
    assert page.inner_text("#chat-log .assistant").startswith("caption:")
    _shot(page, "agent-chat")


def test_the_page_fits_a_phone_and_the_tabs_answer_the_keyboard(page: Page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.click('[data-workflow="search_images"]')
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    _shot(page, "phone-workflow")
    page.focus("#tab-workflows")
    page.keyboard.press("ArrowRight")
    assert page.is_visible("#panel-collections") and not page.is_visible("#panel-workflows")
    assert page.evaluate("() => document.activeElement.id") == "tab-collections"


def _status_is(page: Page, status: str, timeout_ms: float = 30_000) -> None:
    page.wait_for_function(
        "s => document.querySelector('#job-status')?.textContent === s",
        arg=status,
        timeout=timeout_ms,
    )


def _shown_job(page: Page) -> str:
    """The id of the job the Jobs tab shows."""
    view = page.wait_for_selector("#job-view[data-job]")
    assert view is not None
    job = view.get_attribute("data-job")
    assert job
    return job


def _jobs(url: str, status: str) -> list[dict[str, object]]:
    answer = httpx.get(f"{url}/v1/jobs", params={"status": status}, headers=AUTH, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["jobs"]


def _wait(what: str, check: Callable[[], bool], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def _idle(url: str) -> bool:
    return not _jobs(url, "queued") and not _jobs(url, "running")


def _captioner(app: TinyApp) -> int:
    """The captioner's Serve replica process, among `mmserve serve`'s descendants."""
    found = []
    for pid in descendants(app.process.pid):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            continue
        if CAPTIONER.match(title):
            found.append(pid)
    assert len(found) == 1, found
    return found[0]


@contextmanager
def _stopped(pid: int) -> Iterator[None]:
    """The process stopped (SIGSTOP) for the block, then continued: the caption calls it
    serves wait meanwhile, so the jobs making them stay running. Seconds only: Serve takes a
    replica for unhealthy after its health check has waited 30 s."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_run_as_a_job_shows_the_job_in_the_jobs_tab_until_it_succeeds(
    page: Page, server: str
) -> None:
    page.click('[data-workflow="caption"]')
    page.set_input_files("#in-caption-image", str(IMAGES / "green_triangle.png"))
    page.wait_for_selector('[data-field="image"] .preview img')
    page.click("#job-button")
    page.wait_for_selector('#tab-jobs[aria-selected="true"]')
    assert page.is_visible("#panel-jobs") and not page.is_visible("#panel-workflows")
    job = _shown_job(page)
    row = f'#job-table tr[data-job="{job}"]'
    assert page.inner_text(f"{row} td").startswith(f"caption {job[:8]}")
    assert page.evaluate("() => document.activeElement.id") == "job-title"
    caption = page.wait_for_selector(
        '#job-view [data-output="caption"] .text-output', timeout=180_000
    )
    assert caption is not None
    answer = httpx.get(f"{server}/v1/jobs/{job}", headers=AUTH, timeout=30).json()
    assert answer["status"] == "succeeded"
    assert caption.inner_text().strip() == answer["outputs"]["caption"].strip()
    assert page.inner_text("#job-status") == "succeeded"
    assert page.query_selector("#job-cancel") is None  # a finished job has nothing to cancel
    assert page.inner_text('#job-view .timeline [data-step="caption"] .step-status') == "ok"
    page.wait_for_function(
        "s => document.querySelector(s)?.dataset.status === 'succeeded'", arg=row
    )
    assert page.inner_text(f"{row} .job-progress").endswith(" s")  # how long it ran
    _shot(page, "jobs-succeeded")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    assert page.is_visible(f"{row} button") and page.is_visible("#job-status")
    _shot(page, "phone-jobs")


def test_a_queued_and_a_running_job_are_cancelled_from_the_jobs_tab(
    page: Page, server: str, keyed_tiny_app: TinyApp
) -> None:
    """Every job slot of the worker holds a caption job whose model call waits on the stopped
    captioner replica, so the job "Run as a job" queues waits (deterministically) until it
    is cancelled; then one of the running jobs is cancelled too."""
    _wait("the jobs of earlier tests to end", lambda: _idle(server))
    jobs = AppConfig.load(keyed_tiny_app.local_config_path).jobs
    assert jobs.autoscaling is None
    slots = jobs.replicas * jobs.max_concurrent_jobs
    page.click('[data-workflow="caption"]')
    page.set_input_files("#in-caption-image", str(IMAGES / "yellow_sun.png"))
    page.wait_for_selector('[data-field="image"] .preview img')
    running: list[str] = []
    with _stopped(_captioner(keyed_tiny_app)):
        try:
            for n in range(slots):
                image = png_base64((40 + 50 * n, 200 - 30 * n, 90))
                answer = httpx.post(
                    f"{server}/v1/workflows/caption/jobs",
                    json={"inputs": {"image": image}},
                    headers={**AUTH, "x-mmserve-cache": "bypass"},
                    timeout=30,
                )
                assert answer.status_code == 202, answer.text
                running.append(answer.json()["id"])
            _wait("the worker to run them", lambda: len(_jobs(server, "running")) == slots, 60)

            page.click("#job-button")
            job = _shown_job(page)
            assert job not in running
            _status_is(page, "queued")
            row = f'#job-table tr[data-job="{job}"]'
            assert page.inner_text(f"{row} .job-progress") == "next in the queue"
            assert "Waiting to run: next in the queue." in page.inner_text("#job-view")
            _shot(page, "jobs-queued")
            page.click("#job-cancel")
            _status_is(page, "cancelled")
            assert page.query_selector("#job-cancel") is None
            assert page.evaluate("() => document.activeElement.id") == "job-title"
            page.wait_for_function(
                "s => document.querySelector(s)?.dataset.status === 'cancelled'", arg=row
            )

            page.click(f'#job-table tr[data-job="{running[0]}"] button')
            page.wait_for_selector(f'#job-view[data-job="{running[0]}"]')
            _status_is(page, "running")
            assert "0 of 1 steps done" in page.inner_text("#job-view")
            assert page.inner_text(f'#job-table tr[data-job="{running[0]}"] .job-progress') == (
                "0/1 steps"
            )
            page.click("#job-cancel")
            _status_is(page, "cancelled")
            _shot(page, "jobs-cancelled")
        finally:
            # cancelled while the replica is stopped: none of them can finish otherwise
            for other in running:
                httpx.delete(f"{server}/v1/jobs/{other}", headers=AUTH, timeout=30)
            _wait("the cancelled jobs to end", lambda: _idle(server), 60)
    views = [
        httpx.get(f"{server}/v1/jobs/{one}", headers=AUTH, timeout=30).json()
        for one in [job, *running]
    ]
    assert [v["status"] for v in views] == ["cancelled"] * (slots + 1)
    assert views[0]["started_at"] is None  # the queued one never ran


def test_without_the_job_api_there_is_no_jobs_tab_and_no_run_as_a_job(
    browser: Browser, server: str
) -> None:
    """A server without job workers answers 404 for /v1/jobs (here the page is told so)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    missing = {"error": {"code": "not_found", "message": "not found", "request_id": "-"}}

    def no_jobs(route: Route) -> None:
        route.fulfill(status=404, json=missing)

    context.route(re.compile(r"/v1/jobs(\?|$)"), no_jobs)
    tab = context.new_page()
    try:
        tab.goto(server + "/")
        tab.wait_for_selector("#key-dialog[open]")
        tab.fill("#key-input", KEY)
        tab.press("#key-input", "Enter")
        tab.click('[data-workflow="caption"]')
        tab.wait_for_selector("#run-button")
        tab.wait_for_function(
            "() => document.querySelector('#tab-jobs').hidden"
            " && document.querySelector('#job-button').hidden"
        )
        assert not tab.is_visible("#tab-jobs") and not tab.is_visible("#job-button")
        tab.focus("#tab-agents")
        tab.keyboard.press("ArrowRight")  # past the last tab shown: back to the first
        assert tab.evaluate("() => document.activeElement.id") == "tab-workflows"
    finally:
        context.close()
