"""The thin client (`pip install mmserve`, no extras, at the lower bounds of its
dependencies: tests/wheel_site.py) against a served app (the shared app of the fake models,
shared_fake.py): its `Client`, `mmserve run --url`, and `mmserve index add|search|drop --url`
as the local form prints them. The index commands' other output and mistakes:
tests/unit/cli/test_index_remote.py; the thin install's `chat --url` and `mcp --url`:
tests/unit/cli/test_chat.py and test_mcp.py."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from serve_support import ROOT
from shared_fake import FakeApp

from mmserve.client.requests import API_KEY_ENV
from wheel_site import venv

pytestmark = pytest.mark.serve

IMAGE = ROOT / "examples" / "images" / "red_circle.png"


@pytest.fixture(scope="module")
def thin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The venv of `pip install <wheel>`: the client and the remote CLI."""
    return venv(tmp_path_factory)


@pytest.fixture(scope="module")
def url(fake_app: FakeApp) -> str:
    return fake_app.url


def _run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    """A command of the thin venv, in the repository root, with no API key set."""
    env = {k: v for k, v in os.environ.items() if k != API_KEY_ENV}
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_the_thin_client_and_cli_run_a_workflow(thin: Path, url: str) -> None:
    script = (
        "import json; from mmserve import Client\n"
        f"with Client({url!r}) as client:\n"
        f"    result = client.run('caption', image={str(IMAGE)!r})\n"
        "print(json.dumps(result.outputs))\n"
    )
    by_client = _run(thin / "bin" / "python", "-c", script)
    assert by_client.returncode == 0, by_client.stderr
    caption = json.loads(by_client.stdout)["caption"]
    assert isinstance(caption, str) and caption

    by_cli = _run(thin / "bin" / "mmserve", "run", "caption", "--url", url, "-i", f"image=@{IMAGE}")
    assert by_cli.returncode == 0, by_cli.stderr
    answer = json.loads(by_cli.stdout)
    assert answer["outputs"]["caption"] == caption  # the same model, the same caption
    assert [step["step"] for step in answer["trace"]] == ["caption"]


def test_the_thin_cli_indexes_searches_and_drops(thin: Path, url: str) -> None:
    """As the local form: its lines, its ids (content hashes), its metadata (the file's path
    as given)."""
    mmserve = thin / "bin" / "mmserve"
    add = (mmserve, "index", "add", "thin_indexed", "examples/images", "--url", url)
    added = _run(*add, "--batch-size", "3")
    assert added.returncode == 0, added.stderr
    assert added.stdout == "thin_indexed: 4 added, 0 already present, 0 skipped; 4 items in total\n"
    assert "indexing into thin_indexed: 100%" in added.stderr and "4/4" in added.stderr
    again = _run(*add, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {
        "collection": "thin_indexed",
        "planned": 4,
        "inserted": 0,
        "already_present": 4,
        "skipped": [],
        "count": 4,
    }

    query = ("--image", "@examples/images/red_circle.png", "-k", "2", "--json", "--url", url)
    found = _run(mmserve, "index", "search", "thin_indexed", *query)
    assert found.returncode == 0, found.stderr
    top, second = json.loads(found.stdout)["matches"]
    assert top["score"] > 0.99 and second["score"] <= top["score"]
    assert top["payload"]["metadata"] == {"source": "examples/images/red_circle.png"}

    dropped = _run(mmserve, "index", "drop", "thin_indexed", "--url", url)
    assert (dropped.returncode, dropped.stdout) == (0, "dropped thin_indexed (4 items)\n")
    gone = _run(mmserve, "index", "drop", "thin_indexed", "--url", url)
    assert gone.returncode == 1 and not gone.stdout
    [line] = gone.stderr.strip().splitlines()
    assert "unknown collection 'thin_indexed'" in line and "404" in line
