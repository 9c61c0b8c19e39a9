"""One `mmserve serve` of the full tiny profile with an API key, shared by the serve modules
that fit it (the client, MCP and web page modules): one app start instead of one per module.

The app is started by the first module that asks for it (the ``keyed_tiny_app`` fixture of
tests/serve/conftest.py) and stopped after the last module of the run that uses it; the
serve conftest runs those modules one after another, so it is never up while another module
starts its own Ray. A module whose tests need a config of their own starts its own app, as
before (see ``ray_local`` and :func:`serve_support.serving`).
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from serve_support import ROOT, free_port, serving, write_config

from mmserve.client.requests import API_KEY_ENV

#: The fixture's name (the conftest groups the modules whose tests use it).
FIXTURE = "keyed_tiny_app"
#: The key the shared app asks for (as ``Authorization: Bearer``), read from ``API_KEY_ENV``
#: by the server, the same variable the client and `mmserve run --url` read it from.
KEY = "tiny-served-test-key"


@dataclass(frozen=True)
class TinyApp:
    """The shared app: its base URL and its folder (config, store, log)."""

    url: str
    folder: Path


def tiny_app_config(folder: Path) -> dict[str, Any]:
    """deployments/tiny.yaml with a private store, the repository's workflows and agents, and
    the API key; the diffusion models skip their warm-up (minutes on two cores, and no test
    of these modules is about it)."""
    data: dict[str, Any] = yaml.safe_load((ROOT / "deployments" / "tiny.yaml").read_text())
    data["store"] = {**data.get("store", {}), "path": str(folder / "store")}
    data["workflows"] = [str(ROOT / "workflows")]
    data["agents"] = [str(ROOT / "agents")]
    data["server"] = {**data.get("server", {}), "api_key_env": API_KEY_ENV}
    for name in ("image_generator", "image_editor"):
        data["models"][name]["warmup"] = False
    return data


class SharedApp:
    """Starts the app on first :meth:`acquire`, stops it when the last user releases it."""

    def __init__(self) -> None:
        self.users: set[str] = set()
        self._app: TinyApp | None = None
        self._failed: str | None = None
        self._stack = ExitStack()

    def acquire(self, tmp_path_factory: pytest.TempPathFactory) -> TinyApp:
        if self._failed is not None:
            pytest.fail(f"the shared tiny app did not start: {self._failed}")
        if self._app is None:
            try:
                self._app = self._start(tmp_path_factory.mktemp("tiny-app"))
            except BaseException as exc:
                self._stop()
                self._failed = f"{type(exc).__name__}: {exc}"
                raise
        return self._app

    def release(self, user: str) -> None:
        """``user`` (a module) is done; the app stops when no module of the run is left."""
        self.users.discard(user)
        if not self.users:
            self._stop()

    def close(self) -> None:
        """Stop the app whatever is left (the end of the session: a user module whose tests
        were all skipped never releases it)."""
        self.users.clear()
        self._stop()

    def _start(self, folder: Path) -> TinyApp:
        config_path = write_config(folder, tiny_app_config(folder))
        env = {**os.environ, API_KEY_ENV: KEY, "RAY_AUTH_MODE": "disabled"}
        _, url = self._stack.enter_context(
            serving(
                config_path,
                port=free_port(),
                log_path=folder / "serve.log",
                env=env,
                ready_timeout_s=900,
            )
        )
        return TinyApp(url, folder)

    def _stop(self) -> None:
        self._app = None
        self._stack.close()
        self._stack = ExitStack()


#: The one shared app of the test session.
SHARED = SharedApp()
