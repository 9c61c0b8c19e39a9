"""One `mmserve serve` of the full tiny profile with an API key, shared by the serve modules
that fit it (`mmserve serve` as a user runs it, the workflow language, the client, MCP and
web page modules): one app start instead of one per module.

The app is started by the first module that asks for it (the ``keyed_tiny_app`` fixture of
tests/serve/conftest.py) and stopped after the last module of the run that uses it; the
serve conftest runs those modules one after another, so it is never up while another module
starts its own Ray. A module whose tests need a config of their own starts its own app (see
``ray_local`` and :func:`serve_support.serving`). The module marked ``stops_shared_app``
(SIGTERM leaves nothing behind) runs after every other user.

Besides the repository's workflows the app serves :data:`TEST_WORKFLOWS`, two for_each
workflows of test_language_served.py only (test-only: they never go into workflows/), and
the example role plugin (plugins/mmserve-colour-tags, pip-installed, on the app's
PYTHONPATH: :data:`ROLE_PLUGIN`), its model and workflow as its own deployment.yaml has them,
for test_role_plugin_served.py; the modules that compare the served workflows with the
shipped ones add the names of :data:`EXTRA_WORKFLOWS`.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from serve_support import ROOT, SharedByModules, free_port, serving, write_config

from mmserve.client.clients import Client
from mmserve.client.requests import API_KEY_ENV
from mmserve.config import AppConfig
from mmserve.local.mode import LocalApp
from plugin_site import installed

#: The fixture's name (the conftest groups the modules whose tests use it).
FIXTURE = "keyed_tiny_app"
#: The marker of the module that stops the app (the conftest runs it after the other users).
STOPS = "stops_shared_app"
#: The key the shared app asks for (as ``Authorization: Bearer``), read from ``API_KEY_ENV``
#: by the server, the same variable the client and `mmserve run --url` read it from.
KEY = "tiny-served-test-key"


IMAGES = ROOT / "examples" / "images"

_CAPTION_EACH = """
name: caption_each
inputs:
  images: {type: array, items: {type: image}}
steps:
  captions:
    uses: caption
    for_each: ${inputs.images}
    as: image
    cache: true
    retry: {attempts: 8, backoff_s: 1}
    with: {image: "${image}"}
outputs:
  captions: ${captions[*].text}
"""
#: The test-only workflows the app serves next to the repository's, by name (their YAML):
#: ``caption_each`` captions a list of images (cached), ``slow_each`` the same two at a time
#: (no cache), for test_language_served.py.
TEST_WORKFLOWS: dict[str, str] = {
    "caption_each": _CAPTION_EACH,
    "slow_each": _CAPTION_EACH.replace("name: caption_each", "name: slow_each").replace(
        "    cache: true\n", "    concurrency: 2\n"
    ),
}
#: The example role plugin the app serves (installed into :attr:`TinyApp.site`).
ROLE_PLUGIN = ROOT / "plugins" / "mmserve-colour-tags"
#: The workflows the app serves besides the repository's: the test-only ones and the plugin's.
EXTRA_WORKFLOWS = frozenset(TEST_WORKFLOWS) | {
    path.stem for path in (ROLE_PLUGIN / "workflows").glob("*.yaml")
}


@dataclass(frozen=True)
class TinyApp:
    """The shared app: its base URL, its folder (config, store, log), the `mmserve serve`
    process, /v1/ready's answers from the start of that process until it was ready, and the
    site folder of the role plugin (on the app's PYTHONPATH)."""

    url: str
    folder: Path
    process: subprocess.Popen[bytes]
    ready_log: list[httpx.Response]
    site: Path

    @property
    def config_path(self) -> Path:
        return self.folder / "app.yaml"

    @property
    def local_config_path(self) -> Path:
        """The app's config without the role plugin's model and workflows: what this
        process, which does not import the plugin, can load."""
        return self.folder / "local.yaml"

    @property
    def local(self) -> LocalApp:
        """The app's config in local mode (:attr:`local_config_path`), in this process: what
        the served app must equal. One for the test process (the modules comparing with it
        share it), so each tiny model loads here once, on first use."""
        return _local_app(self.local_config_path)


@functools.cache
def _local_app(config_path: Path) -> LocalApp:
    return LocalApp(AppConfig.load(config_path))


def fill_collections(client: Client) -> None:
    """The example captions (``captions``) and images (``images``, ids by file name), as the
    client adds them; the same items whichever module adds them, so adding again is a no-op."""
    texts = [
        json.loads(line)["text"]
        for line in (ROOT / "examples" / "captions.jsonl").read_text().splitlines()
        if line.strip()
    ]
    added = client.collections.add("captions", texts=texts)
    assert added["count"] == len(texts) and len(added["ids"]) == len(texts)
    images = sorted(IMAGES.glob("*.png"))
    names = [p.stem for p in images]
    added = client.collections.add("images", images=images, ids=names, metadata={"set": "ex"})
    assert added["ids"] == names
    listing = {c["name"]: c for c in client.collections.list()}
    assert listing["images"]["modality"] == "image" and listing["images"]["count"] == len(names)
    assert listing["images"]["space"]["backend"] == "clip"
    top = client.collections.search("images", image=IMAGES / "red_circle.png", top_k=1)
    assert top[0]["id"] == "red_circle" and top[0]["payload"]["metadata"] == {"set": "ex"}


#: A model deployment whose loading waits for the file ``GATE`` in the app's folder (the
#: fake backend's ``gate=``): the fixture creates it once mmserve's ingress has answered 503
#: ``not_ready``, so that answer is seen whichever replica happens to load first.
GATED = "gated"
GATE = "models-may-load"
#: The models the shared app loads in its ingress replica (``placement: ingress``): each model
#: deployment is a process importing torch and transformers (a replica of its own for the VQA
#: model took 10.7 of the 58.9 CPU-seconds the app took to start), and no user of the app
#: needs these apart. The captioner (its replica is killed mid-run) stays a
#: deployment of its own, beside the store and the :data:`GATED` model.
IN_INGRESS = (
    "image_encoder",
    "text_encoder",
    "sentence",
    "vqa",
    "image_generator",
    "image_editor",
    "llm",
)


def tiny_app_config(folder: Path, *, role_plugin: bool = True) -> dict[str, Any]:
    """deployments/tiny.yaml with a private store, the repository's workflows (and
    :data:`TEST_WORKFLOWS`, written to ``folder``/test-workflows) and agents, and the API
    key; the diffusion models skip their warm-up (minutes on two cores, and no test of these
    modules is about it); the models of :data:`IN_INGRESS` are loaded in the ingress; the
    :data:`GATED` model is added, and the role plugin's model and workflows as its
    deployment.yaml has them (a longer batch wait, so that concurrent requests surely share
    batches; without them when ``role_plugin`` is false)."""
    data: dict[str, Any] = yaml.safe_load((ROOT / "deployments" / "tiny.yaml").read_text())
    data["store"] = {**data.get("store", {}), "path": str(folder / "store")}
    extra = folder / "test-workflows"
    extra.mkdir(exist_ok=True)
    for name, text in TEST_WORKFLOWS.items():
        (extra / f"{name}.yaml").write_text(text, encoding="utf-8")
    data["workflows"] = [str(ROOT / "workflows"), str(extra)]
    data["agents"] = [str(ROOT / "agents")]
    data["server"] = {**data.get("server", {}), "api_key_env": API_KEY_ENV}
    for name in ("image_generator", "image_editor"):
        data["models"][name]["warmup"] = False
    for name in IN_INGRESS:
        data["models"][name]["placement"] = "ingress"
    data["models"][GATED] = {
        "role": "captioner",
        "backend": "fake",
        "source": f"fake://gate={folder / GATE}",
        "cpus": 0.1,
    }
    if not role_plugin:
        return data
    data["workflows"].append(str(ROLE_PLUGIN / "workflows"))
    plugin = yaml.safe_load((ROLE_PLUGIN / "deployment.yaml").read_text())["models"]
    for name, model in plugin.items():
        data["models"][name] = {**model, "batch": {**model.get("batch", {}), "wait_ms": 200}}
    return data


class SharedApp(SharedByModules[TinyApp]):
    """Starts the app on first :meth:`acquire`, stops it when the last user releases it."""

    what = "the shared tiny app"

    def __init__(self) -> None:
        super().__init__()
        self._stack = ExitStack()

    def acquire(self, tmp_path_factory: pytest.TempPathFactory) -> TinyApp:
        def start() -> TinyApp:
            site = installed(ROLE_PLUGIN, tmp_path_factory)
            return self._start(tmp_path_factory.mktemp("tiny-app"), site)

        return self._acquire(start)

    def _start(self, folder: Path, site: Path) -> TinyApp:
        config_path = write_config(folder, tiny_app_config(folder))
        write_config(folder, tiny_app_config(folder, role_plugin=False), name="local.yaml")
        env = {**os.environ, API_KEY_ENV: KEY, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(site)}
        ready_log: list[httpx.Response] = []
        process, url = self._stack.enter_context(
            serving(
                config_path,
                port=free_port(),
                log_path=folder / "serve.log",
                env=env,
                ready_log=ready_log,
                on_not_ready=(folder / GATE).touch,
                ready_timeout_s=900,
            )
        )
        return TinyApp(url, folder, process, ready_log, site)

    def _stop(self) -> None:
        self._stack.close()
        self._stack = ExitStack()


#: The one shared app of the test session.
SHARED = SharedApp()
