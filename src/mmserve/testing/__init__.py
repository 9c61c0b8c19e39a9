"""Testing workflows and plugins: the engine in this process, no Ray, no server.

``fake_config()`` serves every built-in role with ``fake`` (deterministic, weight-free: it
needs no download and answers in microseconds) and keeps collections in memory; or load a
real profile (``deployments/tiny.yaml``: tiny offline models of the real architectures).
Then run workflows with :func:`run_workflow`, as ``mmserve run`` does::

    from mmserve.testing import fake_config, local_app, run_workflow

    app = local_app(fake_config(workflows=["workflows"]))
    result = run_workflow(app, "notes", {"question": "what is red?"})
    assert result.outputs["lines"]

With pytest, ``pytest_plugins = ["mmserve.testing"]`` in a ``conftest.py`` adds the fixture
``mmserve_app``: a function ``(workflows, config=None) -> LocalApp`` on fake models.
A plugin's steps register through its entry point once the package is installed (``pip
install -e .``), so tests see them as a server would.

A store plugin runs the store contract's tests by subclassing the classes of
:mod:`mmserve.testing.store_contract` (``VectorStoreContract`` and those of the capabilities
it declares) and giving them its ``store`` fixture.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mmserve.config import AppConfig
from mmserve.local.mode import LocalApp
from mmserve.workflow import RunResult, Workflow

#: The roles :func:`fake_config` serves with the weight-free ``fake`` backend.
FAKE_ROLES = ("image_encoder", "text_encoder", "captioner", "vqa")


def fake_config(
    workflows: Sequence[str | Path] = (),
    *,
    models: Mapping[str, Any] | None = None,
    base_dir: str | Path = ".",
) -> AppConfig:
    """An app config on fake models and a memory store; ``models`` adds or replaces entries
    (e.g. ``{"tagger": {"backend": "my-backend", "source": "..."}}``)."""
    entries: dict[str, Any] = {
        role: {"backend": "fake", "source": "fake://"} for role in FAKE_ROLES
    }
    entries.update(models or {})
    data = {
        "models": entries,
        "store": {"kind": "memory"},
        "workflows": [str(p) for p in workflows],
        "agents": [],
    }
    return AppConfig.from_dict(data, base_dir=Path(base_dir), source="mmserve.testing")


def local_app(config: AppConfig | str | Path | None = None) -> LocalApp:
    """The engine with in-process models: ``config`` an AppConfig, a config file, or None
    for :func:`fake_config` with no workflows (run workflow files by path)."""
    if config is None:
        config = fake_config()
    elif not isinstance(config, AppConfig):
        config = AppConfig.load(config)
    return LocalApp(config)


def run_workflow(
    app: LocalApp, workflow: Workflow | str, inputs: Mapping[str, Any], **options: Any
) -> RunResult:
    """Run a workflow (a name from the config, a .yaml path, or a loaded Workflow) and wait
    for its result; errors are raised as ``mmserve run`` would report them."""
    return asyncio.run(app.run(workflow, inputs, **options))


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is only needed to use the fixture
    pass
else:
    # failing contract asserts show their values, as a test file's own asserts do
    pytest.register_assert_rewrite("mmserve.testing.store_contract")

    @pytest.fixture
    def mmserve_app() -> Callable[..., LocalApp]:
        """``mmserve_app(workflows, config=None)``: a LocalApp on fake models (or ``config``)."""

        def make(
            workflows: Sequence[str | Path] = (), config: AppConfig | str | Path | None = None
        ) -> LocalApp:
            return local_app(config if config is not None else fake_config(workflows))

        return make


__all__ = ["FAKE_ROLES", "fake_config", "local_app", "run_workflow"]
