"""Local mode: the workflow engine with in-process models, no Ray.

Used by ``mmserve run --local``, ``mmserve index`` and the integration tests. The served mode
(:mod:`mmserve.serve`) hosts the same engine behind HTTP with a gateway of Serve handles.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmserve.config import AppConfig
from mmserve.errors import MmserveError, WorkflowNotFoundError
from mmserve.gateway.local import LocalGateway
from mmserve.registry import Registry, registry
from mmserve.tracing import configure as configure_tracing
from mmserve.workflow import (
    Engine,
    EventHook,
    LazyStore,
    RunResult,
    Workflow,
    load_workflow,
    load_workflows,
)


def open_configured_store(config: AppConfig) -> Any:
    """The config's vector store, or None when no store support is installed."""
    try:
        stores = importlib.import_module("mmserve.stores")
    except ImportError:  # pragma: no cover - stores ship with mmserve
        return None
    opener = getattr(stores, "open_store", None)
    return opener(config) if opener is not None else None


class LocalApp:
    """Config + in-process models + store + the workflows the config names."""

    def __init__(self, config: AppConfig, *, registry: Registry = registry) -> None:
        configure_tracing()  # spans exported when OTEL_EXPORTER_OTLP_ENDPOINT is set
        self.config = config
        self.registry = registry
        self.gateway = LocalGateway(config, registry=registry)
        #: the configured store, opened when first used: by a step of a run that reaches
        #: for it (``ctx.store``), or by a caller reading :attr:`store`
        self.lazy_store = LazyStore(lambda: open_configured_store(self.config))
        self._workflows: dict[str, Workflow] | None = None

    @property
    def store(self) -> Any:
        """The configured store (opened now, on first use); None when none is installed."""
        return self.lazy_store.get()

    @property
    def workflows(self) -> dict[str, Workflow]:
        if self._workflows is None:
            paths = [p for p in self.config.workflow_paths() if p.exists()]
            self._workflows = load_workflows(paths, registry=self.registry)
        return self._workflows

    def _loadable(self) -> dict[str, Workflow]:
        """The configured workflows, or none when they do not load (a file given by path
        must not fail for problems elsewhere; its own `uses: workflow:` then says so)."""
        try:
            return self.workflows
        except MmserveError:
            return {}

    def workflow(self, name_or_path: str) -> Workflow:
        """A workflow by name (from the config's workflow folders) or by file path."""
        path = Path(name_or_path)
        if path.suffix in (".yaml", ".yml") and path.exists():
            # a file may run the configured workflows as steps (`uses: workflow:NAME`)
            return load_workflow(path, registry=self.registry, workflows=self._loadable())
        workflow = self.workflows.get(name_or_path)
        if workflow is None:
            raise WorkflowNotFoundError(name=name_or_path, known=list(self.workflows))
        return workflow

    async def run(
        self,
        workflow: Workflow | str,
        inputs: Mapping[str, Any],
        *,
        timeout_s: float | None = None,
        on_event: EventHook | None = None,
        use_cache: bool = True,
    ) -> RunResult:
        if isinstance(workflow, str):
            workflow = self.workflow(workflow)
        # the store opens only if a step reaches for it: a caption run never imports LanceDB
        engine = Engine(self.gateway, store=self.lazy_store, registry=self.registry)
        return await engine.run(
            workflow, inputs, timeout_s=timeout_s, use_cache=use_cache, on_event=on_event
        )


__all__ = ["LocalApp", "open_configured_store"]
