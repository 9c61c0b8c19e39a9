"""The web page's files as the ingress serves them: at / and /web/ without the API key (they
hold no secret) while the API still needs it, every file the page loads present with its type,
nothing fetched from elsewhere, and `server.web: false` leaving only the API (no Ray)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from api_support import AUTH, KEY, build_api
from fastapi.testclient import TestClient

from mmserve.http.routes.web import web_folder

pytestmark = pytest.mark.unit

_IMPORT = re.compile(r"""from\s+"\./([a-z0-9_-]+\.js)";""")
_LINKED = re.compile(r"""(?:src|href)="/web/([^"]+)\"""")


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MMSERVE_WEB_KEY", KEY)
        with TestClient(build_api({"api_key_env": "MMSERVE_WEB_KEY"})) as test_client:
            yield test_client


def _page_files(client: TestClient) -> set[str]:
    """Every file the page loads: linked from index.html, then imported by the modules."""
    html = client.get("/").text
    todo = set(_LINKED.findall(html))
    found: set[str] = set()
    while todo:
        name = todo.pop()
        found.add(name)
        if name.endswith(".js"):
            todo |= set(_IMPORT.findall(client.get(f"/web/{name}").text)) - found
    return found


def test_the_page_and_its_files_need_no_key_and_the_api_still_does(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert KEY not in page.text
    files = _page_files(client)
    modules = {"main.js", "api.js", "forms.js", "collections.js", "chat.js", "jobs.js"}
    assert modules | {"app.css"} <= files
    for name in files:
        answer = client.get(f"/web/{name}")
        assert answer.status_code == 200, name
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        assert answer.headers["content-type"].startswith(kind), name
        assert KEY not in answer.text
    assert client.head("/web/main.js").status_code == 200
    assert client.get("/v1/collections").status_code == 401
    assert client.get("/v1/collections", headers=AUTH).status_code == 200
    assert client.get("/openapi.json").status_code == 401


def test_every_shipped_file_is_used_and_nothing_comes_from_elsewhere(client: TestClient) -> None:
    shipped = {f.name for f in web_folder().iterdir() if f.is_file()}
    assert shipped == _page_files(client) | {"index.html"}
    for name in shipped:
        text = web_folder().joinpath(name).read_text(encoding="utf-8")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text), name


@pytest.mark.parametrize("path", ["/web/nope.js", "/web/..%2Fapi.py", "/web/main.py", "/web/"])
def test_unknown_files_are_a_404_in_the_error_shape(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code in (401, 404), path
    if answer.status_code == 404:
        assert answer.json()["error"]["code"] == "not_found"


def test_web_false_serves_only_the_api() -> None:
    with TestClient(build_api({"web": False})) as plain:
        assert plain.get("/").status_code == 404
        assert plain.get("/web/main.js").status_code == 404
        assert plain.get("/v1/workflows").status_code == 200
