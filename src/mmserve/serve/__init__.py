"""The Ray Serve replicas: the ingress, the model server, the store server, and what they use.

* :mod:`.app` -- :func:`build_app` (config -> Serve application) and ``app_builder``, the
  ``import_path`` of the config files ``mmserve build`` writes; :mod:`.plan` -- which
  deployments a config makes and their Serve options (no Ray);
* :mod:`.ingress` -- the HTTP ingress (it mounts :mod:`mmserve.http`), :mod:`.in_ingress`
  (models hosted in each ingress replica), :mod:`.handles` -- :class:`HandleGateway`, the
  engine's gateway over DeploymentHandles, :mod:`.replica_retry`;
* :mod:`.model_server` -- the model deployment (``@serve.batch``, live batch settings, the
  trace context across the handle call), :mod:`.warmup`; :mod:`.store_server` -- one
  writer, N readers;
* :mod:`.health`, :mod:`.status` (what ``mmserve status`` and ``/v1/health`` show),
  :mod:`.fail_fast`, :mod:`.metrics` / :mod:`.metered` (Prometheus).

Names below are imported lazily, so ``import mmserve.serve.plan`` stays free of Ray.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "build_app": "mmserve.serve.app",
    "app_builder": "mmserve.serve.app",
    "HandleGateway": "mmserve.serve.handles",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mmserve.serve' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = sorted(_EXPORTS)
