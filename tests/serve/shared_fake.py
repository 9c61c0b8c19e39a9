"""One app of the weight-free ``fake`` models on the serve tier's shared in-process Ray,
deployed once for the modules that need nothing else of it (``fake_app``): the fuzz run, the
metrics and the store's reader replicas. One deploy instead of one per module.

The app is deployed by the first module that asks for it and stopped after the last one; the
serve conftest runs those modules one after another inside the ``ray_local`` group, so no
other app is deployed on that Ray meanwhile. Its config: the four fake roles, a LanceDB
store with two reader replicas (``store: {replicas: 2}``), every shipped workflow plus
``cached_answer`` (a cached VQA step, for the metrics) and ``slow_chain`` (on a slow fake
captioner of its own, for the jobs), the job worker with a short lease, and the fuzz run's
request limits (:data:`MAX_TEXT`, :data:`MAX_ITEMS`). Each module uses collections of its own names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from serve_support import ROOT, SharedByModules, wait_ready, write_config

from mmserve.config import AppConfig
from mmserve.deploy.session import ServeSession

#: The fixture's name (the conftest groups the modules whose tests use it).
FIXTURE = "fake_app"
#: The app's request limits: a longer text or a longer list is refused.
MAX_TEXT, MAX_ITEMS = 2_000, 16
CACHED_ANSWER = """
name: cached_answer
inputs:
  image: {type: image}
  question: {type: string}
steps:
  answer:
    uses: answer
    cache: true
    with: {image: "${inputs.image}", question: "${inputs.question}"}
outputs:
  answer: ${answer.answer}
"""


#: Three caption steps on the slow captioner (each call :data:`SLOW_MS`): the jobs tests'
#: workflow (test_jobs_served.py), long enough to kill replicas while jobs run.
SLOW_MS = 150
SLOW_CHAIN = """
name: slow_chain
inputs:
  image: {type: image}
steps:
  first:
    uses: caption
    with: {image: "${inputs.image}", model: slow_captioner}
  second:
    uses: caption
    with: {image: "${inputs.image}", prompt: "${first.text}", model: slow_captioner}
  third:
    uses: caption
    with: {image: "${inputs.image}", prompt: "${second.text}", model: slow_captioner}
outputs:
  caption: ${third.text}
"""


@dataclass(frozen=True)
class FakeApp:
    url: str
    #: The app's folder (its store is ``store`` in it) and its config file.
    folder: Path
    config_path: Path


def fake_app_config(folder: Path) -> dict[str, Any]:
    (folder / "cached_answer.yaml").write_text(CACHED_ANSWER, encoding="utf-8")
    (folder / "slow_chain.yaml").write_text(SLOW_CHAIN, encoding="utf-8")
    fake = {"backend": "fake", "source": "fake://", "cpus": 0.1}
    slow = {**fake, "role": "captioner", "source": f"fake://delay_ms={SLOW_MS}"}
    return {
        "models": {
            **{r: fake for r in ("image_encoder", "text_encoder", "captioner", "vqa")},
            "slow_captioner": slow,
        },
        # the writer and two reader replicas (test_store_replicas_served)
        "store": {"kind": "lancedb", "path": str(folder / "store"), "replicas": 2},
        "workflows": [
            str(ROOT / "workflows"),
            str(folder / "cached_answer.yaml"),
            str(folder / "slow_chain.yaml"),
        ],
        # a job whose worker dies is back after lease_s (test_jobs_served.py)
        "jobs": {"lease_s": 2.0},
        "server": {
            "limits": {
                "max_body_bytes": 1024 * 1024,
                "max_text_chars": MAX_TEXT,
                "max_items": MAX_ITEMS,
                "max_image_pixels": 1_000_000,
            }
        },
    }


class SharedFakeApp(SharedByModules[FakeApp]):
    """Deploys the app on first :meth:`acquire`, stops it when the last user releases it."""

    what = "the shared fake app"

    def __init__(self) -> None:
        super().__init__()
        self._session: ServeSession | None = None

    def acquire(self, tmp_path_factory: pytest.TempPathFactory, port: int) -> FakeApp:
        """The app, deployed on the shared Serve's ``port`` if it is not up yet."""

        def start() -> FakeApp:
            folder = tmp_path_factory.mktemp("fake-app")
            config_path = write_config(folder, fake_app_config(folder))
            self._session = ServeSession(AppConfig.load(config_path), port=port)
            url = self._session.start()
            wait_ready(url)
            return FakeApp(url, folder, config_path)

        return self._acquire(start)

    def _stop(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.stop()


#: The one shared fake app of the test session.
SHARED_FAKE = SharedFakeApp()
