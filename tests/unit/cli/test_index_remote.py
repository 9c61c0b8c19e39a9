"""`mmserve index add|list|search|drop --url`, run as a user runs it (the CLI's own app, in
this process as tests/cli_support.py runs it; in a process without the server packages for
the thin-install case) against the API (fake models, memory store) behind a real HTTP server: the
local form's lines and JSON, the same ids and metadata as a local ingest of the same folder,
a re-run adding only what is missing, one clear line for every mistake, and nothing of the
``server`` extra imported."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from api_support import KEY, ROOT, serving_with_key

from cli_support import mmserve as run_cli
from mmserve import Client

pytestmark = pytest.mark.unit

KEY_ENV = "MMSERVE_UNIT_INDEX_KEY"
IMAGES = ROOT / "examples" / "images"
#: Runs the `mmserve` command with the packages of the ``server`` extra (and FastAPI, which
#: only the extra brings) missing, as on `pip install mmserve`: None in ``sys.modules`` makes
#: importing them fail and ``importlib.util.find_spec`` answer None.
THIN = """
import sys
for name in ("torch", "ray", "transformers", "diffusers", "lancedb", "fastapi", "tokenizers"):
    sys.modules[name] = None
from mmserve.cli import main
sys.argv[0] = "mmserve"
main()
"""


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """The API with an API key, behind uvicorn in a thread on a free port."""
    with serving_with_key(KEY_ENV) as live:
        yield live


def mmserve(
    *args: str, key: str | None = KEY, thin: bool = False, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """`mmserve ARGS` with the key (or none) in ``$MMSERVE_API_KEY``: in this process
    (tests/cli_support.py), or with ``thin`` in a process of its own without the server
    packages."""
    if not thin:
        return run_cli(*args, cwd=cwd, env={"MMSERVE_API_KEY": key, "MMSERVE_CONFIG": None})
    env = {k: v for k, v in os.environ.items() if k not in ("MMSERVE_API_KEY", "MMSERVE_CONFIG")}
    if key is not None:
        env["MMSERVE_API_KEY"] = key
    command = [sys.executable, "-c", THIN, *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def ok(*args: str, **options: Any) -> str:
    done = mmserve(*args, **options)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def one_line_error(done: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The one line a failed command printed on stderr (and nothing on stdout)."""
    assert done.returncode == code, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and not done.stdout, done.stderr
    return lines[0]


def _dead_url() -> str:
    """A URL where nothing listens (a port the system just handed out and took back)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _folder(tmp_path: Path) -> Path:
    """examples/images, one file that only looks like an image, and one of no known kind."""
    folder = tmp_path / "shapes"
    shutil.copytree(IMAGES, folder)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but no image")
    (folder / "README.md").write_text("not an item\n", encoding="utf-8")
    return folder


def test_add_twice_list_and_search_as_the_local_form_prints_them(url: str, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    done = mmserve("index", "add", "remote_shapes", str(folder), "--url", url, "--batch-size", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "remote_shapes: 4 added, 0 already present, 2 skipped; 4 items in total\n"
    assert f"skipped {folder / 'README.md'}: not an image or a text file" in done.stderr
    assert f"skipped {folder / 'broken.png'}: " in done.stderr
    assert "indexing into remote_shapes: 100%" in done.stderr and "5/5" in done.stderr

    again = json.loads(ok("index", "add", "remote_shapes", str(folder), "--url", url, "--json"))
    assert {k: again[k] for k in ("planned", "inserted", "already_present", "count")} == {
        "planned": 5,  # the broken image is skipped when read, the README when planned
        "inserted": 0,
        "already_present": 4,
        "count": 4,
    }
    assert sorted(s["where"] for s in again["skipped"]) == [
        str(folder / "README.md"),
        str(folder / "broken.png"),
    ]

    listed = ok("index", "list", "--url", url)
    assert "remote_shapes  image  4 items  space=fake:fake://:32\n" in listed
    [shapes] = [
        c
        for c in json.loads(ok("index", "list", "--url", url, "--json"))["collections"]
        if c["name"] == "remote_shapes"
    ]
    assert shapes == {
        "name": "remote_shapes",
        "space": {"backend": "fake", "model_id": "fake://", "dim": 32},
        "modality": "image",
        "count": 4,
    }

    red = folder / "red_circle.png"
    by_image = json.loads(
        ok(
            "index",
            "search",
            "remote_shapes",
            "--image",
            f"@{red}",
            "-k",
            "2",
            "--url",
            url,
            "--json",
        )
    )
    top = by_image["matches"][0]
    assert by_image["collection"] == "remote_shapes" and len(by_image["matches"]) == 2
    assert top["payload"]["metadata"] == {"source": str(red)} and top["score"] == 1.0
    assert top["payload"]["image"] and top["payload"]["text"] is None
    lines = ok("index", "search", "remote_shapes", "--text", "red", "-k", "3", "--url", url)
    assert len(lines.splitlines()) == 3
    assert re.fullmatch(r"  1\. \d\.\d{4}  [0-9a-f]{32}  .*\.png", lines.splitlines()[0])


def test_a_rerun_adds_only_what_is_missing(url: str, tmp_path: Path) -> None:
    """An add cut short (here: the first two files only) and run again for the whole folder
    sends only the items the collection does not hold yet."""
    folder = _folder(tmp_path)
    first = [folder / image.name for image in sorted(IMAGES.glob("*.png"))[:2]]
    ok("index", "add", "resumed", *map(str, first), "--url", url)
    done = ok("index", "add", "resumed", str(folder), "--url", url)
    assert done == "resumed: 2 added, 2 already present, 2 skipped; 4 items in total\n"


def test_local_and_remote_ingests_of_a_folder_agree(url: str, tmp_path: Path) -> None:
    """The same folder indexed locally (`--config`) and through the server (`--url`) gives
    the same items: ids (content hashes, or a file's own), metadata, texts."""
    notes = tmp_path / "notes.jsonl"
    lines = [
        {"text": "a note with its own id", "id": "n1", "metadata": {"lang": "en"}},
        {"text": "a note with an extra field", "topic": "shapes"},
        "a plain note",
    ]
    notes.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    config = tmp_path / "app.yaml"
    fake = {"backend": "fake", "source": "fake://"}
    config.write_text(
        yaml.safe_dump(
            {
                "models": {"image_encoder": fake, "text_encoder": fake},
                "store": {"kind": "lancedb", "path": str(tmp_path / "store")},
                "workflows": [],
            }
        ),
        encoding="utf-8",
    )
    folder = _folder(tmp_path)
    for name, path in (("agree_images", folder), ("agree_notes", notes)):
        local = json.loads(ok("index", "add", name, str(path), "--config", str(config), "--json"))
        remote = json.loads(ok("index", "add", name, str(path), "--url", url, "--json"))
        assert remote == local
        query = ["index", "search", name, "--text", "a note", "-k", "10", "--json"]
        local_items = json.loads(ok(*query, "--config", str(config)))["matches"]
        remote_items = json.loads(ok(*query, "--url", url))["matches"]
        assert _items(remote_items) == _items(local_items)
        assert len(local_items) == local["count"] > 0
    with Client(url, api_key=KEY) as client:
        page = client.collections.items("agree_notes")
    assert {i["id"]: i["metadata"] for i in page["items"]}["n1"] == {
        "source": f"{notes}:1",
        "lang": "en",
    }


def _items(matches: list[dict[str, Any]]) -> dict[str, Any]:
    return {m["id"]: (m["payload"]["text"], m["payload"]["metadata"]) for m in matches}


def test_the_remote_forms_need_nothing_of_the_server_extra(url: str, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    added = ok("index", "add", "thin", str(folder), "--url", url, thin=True)
    assert added.startswith("thin: 4 added, 0 already present, 2 skipped")
    assert "thin  image  4 items" in ok("index", "list", "--url", url, thin=True)
    found = ok("index", "search", "thin", "--text", "red", "--url", url, "--json", thin=True)
    assert len(json.loads(found)["matches"]) == 4
    local = mmserve("index", "list", "--profile", "tiny", thin=True)
    assert one_line_error(local).startswith("error: `mmserve index list` runs the server side")
    assert ok("index", "drop", "thin", "--url", url, thin=True) == "dropped thin (4 items)\n"
    assert "thin  image" not in ok("index", "list", "--url", url, thin=True)


def test_a_server_that_does_not_answer_is_given_the_budget_of_run_url() -> None:
    from mmserve.cli.common import CLI_CONNECT_BUDGET_S
    from mmserve.cli.index_remote import connect

    with connect("http://127.0.0.1:1") as client:
        assert client.retry.budget_s == CLI_CONNECT_BUDGET_S


def test_mistakes_are_one_clear_line(url: str, tmp_path: Path) -> None:
    missing = one_line_error(mmserve("index", "add", "x", str(tmp_path / "nowhere"), "--url", url))
    assert missing == f"error: no such file or folder: {str(tmp_path / 'nowhere')!r}"
    unknown = one_line_error(mmserve("index", "search", "no_such", "--text", "x", "--url", url))
    assert "unknown collection 'no_such'" in unknown and "404 collection_not_found" in unknown
    dead = _dead_url()
    for args in (["add", "x", str(IMAGES)], ["list"]):
        down = one_line_error(mmserve("index", *args, "--url", dead))
        assert down.startswith(f"error: cannot reach mmserve at {dead}")
    denied = one_line_error(mmserve("index", "list", "--url", url, key="wrong"))
    assert "API key" in denied and "401" in denied
    both = one_line_error(mmserve("index", "list", "--url", url, "--profile", "tiny"), code=2)
    assert both.startswith("usage error: --url") and "--config" in both
    drop = one_line_error(mmserve("index", "drop", "no_such", "--url", url))
    assert "unknown collection 'no_such'" in drop and "404 collection_not_found" in drop
    image = one_line_error(mmserve("index", "search", "x", "--image", "@gone.png", "--url", url))
    assert image == "error: input '--image': cannot read 'gone.png': No such file or directory"
