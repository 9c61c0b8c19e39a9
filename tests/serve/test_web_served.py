"""The web page as a person uses it: a real `mmserve serve` of the offline tiny profile
(deployments/tiny.yaml) with an API key, driven in headless Chromium (Debian's `chromium`,
through Playwright). The page asks for the key, runs `caption` on an uploaded image, shows the
API's error next to the field for a file that is not an image, runs a retrieval workflow whose
thumbnails load, browses, searches and adds to a collection, and chats with an agent.
Screenshots of each screen go to .artifacts/web/ (git-ignored). The server is the one the
client, MCP and web page modules share (shared_app.py)."""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from serve_support import ROOT
from shared_app import KEY, TinyApp

pytestmark = pytest.mark.serve

IMAGES = ROOT / "examples" / "images"
SHOTS = ROOT / ".artifacts" / "web"
#: Every <img> in ``selector`` has loaded real pixels.
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
