"""A third-party role plugin (plugins/mmserve-colour-tags), installed for real (pip) and
served by `mmserve serve`: its role, weight-free backend (source: a palette name, not a hub
id) and steps answer over HTTP with the deployment, replicas and batching its config asks
for, and equal local mode (`mmserve run`), with no change inside mmserve. The app is the one
the serve modules share (shared_app.py), which serves the plugin's model and workflow as its
deployment.yaml has them, with the plugin on its PYTHONPATH."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_support import png_base64
from shared_app import KEY, TinyApp

pytestmark = pytest.mark.serve

RUN = [sys.executable, "-m", "mmserve", "run", "tag_image_colours"]
COLOURS = [(220, 30, 30), (30, 60, 220), (40, 170, 60), (240, 220, 40)]
AUTH = {"authorization": f"Bearer {KEY}"}


def _env(site: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(site)}


@pytest.fixture(scope="module")
def url(keyed_tiny_app: TinyApp) -> str:
    return keyed_tiny_app.url


@pytest.fixture(scope="module")
def site(keyed_tiny_app: TinyApp) -> Path:
    return keyed_tiny_app.site


@pytest.fixture(scope="module")
def config_path(keyed_tiny_app: TinyApp) -> Path:
    return keyed_tiny_app.config_path


def _local(site: Path, config_path: Path, image: str, folder: Path) -> dict[str, Any]:
    """`mmserve run` of the plugin's workflow in local mode, on the app's config."""
    path = folder / "image.png"
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
    listing = httpx.get(f"{url}/v1/plugins", headers=AUTH, timeout=30).json()
    roles = {p["name"]: p for p in listing["plugins"] if p["kind"] == "role"}
    assert {"image_encoder", "text_encoder", "captioner", "vqa", "image_tagger"} <= set(roles)
    tagger = roles["image_tagger"]
    assert tagger["origin"] == "mmserve-colour-tags 0.1.0"
    assert set(tagger["methods"]) == {"tag", "fingerprint"}
    assert tagger["methods"]["fingerprint"]["item"] == "mmserve_colour_tags.role.FingerprintItem"
    assert tagger["methods"]["fingerprint"]["batched_by_key"] is True
    assert listing["broken"] == []


def test_its_deployment_runs_the_configured_replicas(url: str) -> None:
    health = httpx.get(f"{url}/v1/health", headers=AUTH, timeout=30).json()
    assert health["deployments"]["image_tagger"]["replicas"] == 2
    assert health["deployments"]["image_tagger"]["models"] == ["image_tagger"]


def test_concurrent_runs_ride_in_batches_and_equal_local_mode(
    url: str, site: Path, config_path: Path, tmp_path: Path
) -> None:
    images = [png_base64(colour, (40, 30)) for colour in COLOURS] * 4

    async def run_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=60) as client:
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
        assert bodies[index]["outputs"] == _local(site, config_path, images[index], tmp_path)
