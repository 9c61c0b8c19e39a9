"""Ray Serve hosting: one deployment per model, the ingress app, build_app().

Modules, from the outside in:

* :mod:`.runner` -- :class:`ServeSession`: check, start or join Ray, deploy, stop (``mmserve
  serve``); :mod:`.preflight` holds the checks that run before Ray starts.
* :mod:`.app` -- :func:`build_app` (config -> Serve application) and ``app_builder``, the
  ``import_path`` target of the config files :mod:`.serve_config` writes (``mmserve build``).
* :mod:`.plan` -- which deployments a config makes and their Serve options (no Ray).
* :mod:`.ingress` / :mod:`.api` / :mod:`.schemas` / :mod:`.health` -- the HTTP API (v1):
  :mod:`.guard` (request ids, API key, body size), :mod:`.limits` (input limits, images
  decoded safely), :mod:`.run_request` (JSON or multipart runs, the deadline header),
  :mod:`.routes_collections` / :mod:`.schemas_collections` (``/v1/collections``),
  :mod:`.errors_http` (one JSON error answer), :mod:`.runtime` (what the API serves).
* :mod:`.deployments` -- the model deployment (``@serve.batch``, live batch settings);
  :mod:`.handles` -- :class:`HandleGateway`, the engine's gateway over DeploymentHandles;
  :mod:`.store` -- the single-writer store deployment and its client.

Names below are imported lazily, so ``import mmserve.serving.plan`` stays free of Ray.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "build_app": "mmserve.serving.app",
    "app_builder": "mmserve.serving.app",
    "HandleGateway": "mmserve.serving.handles",
    "ServeSession": "mmserve.serving.runner",
    "create_api": "mmserve.serving.api",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mmserve.serving' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = sorted(_EXPORTS)
