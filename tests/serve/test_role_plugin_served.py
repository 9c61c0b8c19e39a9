"""A third-party role plugin (plugins/mmserve-colour-tags), installed for real (pip) and
served by `mmserve serve`: its role, weight-free backend (source: a palette name, not a hub
id) and steps answer over HTTP with the deployment, replicas and batching its config asks
for, and equal local mode (`mmserve run`), with no change inside mmserve."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from serve_support import ROOT, free_port, png_base64, serving, write_config

pytestmark = pytest.mark.serve

PLUGIN = ROOT / "plugins" / "mmserve-colour-tags"
PIP_INSTALL = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
RUN = [sys.executable, "-m", "mmserve", "run", "tag_image_colours"]
COLOURS = [(220, 30, 30), (30, 60, 220), (40, 170, 60), (240, 220, 40)]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plugin package installed by pip into its own site folder (on PYTHONPATH)."""
    site = tmp_path_factory.mktemp("plugin") / "site"
    subprocess.run(
        [*PIP_INSTALL, "--target", str(site), str(PLUGIN)],
        check=True,
        timeout=300,
    )
    return site


def _env(site: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(site)}


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plugin's own deployment.yaml, with a longer batch wait so that concurrent
    requests surely share batches."""
    data: dict[str, Any] = yaml.safe_load((PLUGIN / "deployment.yaml").read_text())
    data["models"]["image_tagger"]["batch"]["wait_ms"] = 200
    data["workflows"] = [str(PLUGIN / "workflows")]
    return write_config(tmp_path_factory.mktemp("app"), data)


@pytest.fixture(scope="module")
def url(site: Path, config_path: Path) -> Iterator[str]:
    log = config_path.parent / "serve.log"
    with serving(config_path, port=free_port(), log_path=log, env=_env(site)) as (_, url):
        yield url


def _local(site: Path, config_path: Path, image: str) -> dict[str, Any]:
    """`mmserve run` of the plugin's workflow in local mode."""
    path = config_path.parent / "image.png"
    path.write_bytes(base64.b64decode(image))
    result = subprocess.run(
        [*RUN, "--config", str(config_path), "--input", f"image=@{path}"],
        capture_output=True,
        text=True,
        env=_env(site),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout)["outputs"])


def test_the_plugin_role_is_listed_with_its_methods(url: str) -> None:
    listing = httpx.get(f"{url}/v1/plugins", timeout=30).json()
    roles = {p["name"]: p for p in listing["plugins"] if p["kind"] == "role"}
    assert {"image_encoder", "text_encoder", "captioner", "vqa", "image_tagger"} <= set(roles)
    tagger = roles["image_tagger"]
    assert tagger["origin"] == "mmserve-colour-tags 0.1.0"
    assert set(tagger["methods"]) == {"tag", "fingerprint"}
    assert tagger["methods"]["fingerprint"]["item"] == "mmserve_colour_tags.role.FingerprintItem"
    assert tagger["methods"]["fingerprint"]["batched_by_key"] is True
    assert listing["broken"] == []


def test_its_deployment_runs_the_configured_replicas(url: str) -> None:
    health = httpx.get(f"{url}/v1/health", timeout=30).json()
    assert health["deployments"]["image_tagger"]["replicas"] == 2
    assert health["deployments"]["image_tagger"]["models"] == ["image_tagger"]


def test_concurrent_runs_ride_in_batches_and_equal_local_mode(
    url: str, site: Path, config_path: Path
) -> None:
    images = [png_base64(colour, (40, 30)) for colour in COLOURS] * 4

    async def run_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        "/v1/workflows/tag_image_colours/run", json={"inputs": {"image": i}}
                    )
                    for i in images
                )
            )

    responses = asyncio.run(run_all())
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    bodies = [r.json() for r in responses]
    assert [b["outputs"]["tags"][0] for b in bodies[:4]] == ["red", "blue", "green", "yellow"]
    sizes = {entry["step"]: [] for entry in bodies[0]["trace"]}
    for body in bodies:
        for entry in body["trace"]:
            sizes[entry["step"]].append(entry["batch_size"])
    assert max(sizes["tags"]) > 1 and max(sizes["fingerprint"]) > 1, sizes
    for index in range(4):
        assert bodies[index]["outputs"] == _local(site, config_path, images[index])
