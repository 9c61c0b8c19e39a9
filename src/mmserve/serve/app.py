"""Build the Serve application of an app config.

``build_app(config)`` returns the bound application: the ingress, one deployment per model
(see :mod:`mmserve.serve.plan` for sharing; models with ``placement: ingress`` have none,
each ingress replica loads them) and the store deployment (its writer, and its readers when
the config has ``store.replicas``). ``app_builder`` is the same thing as a Ray Serve
*application builder*, the ``import_path`` target of the config files that ``mmserve build``
writes::

    applications:
      - name: mmserve
        import_path: mmserve.serve.app:app_builder
        args: {config: /srv/mmserve/deployments/cluster.yaml}

so ``serve run serve.yaml``, ``serve deploy`` and a KubeRay RayService run the same app.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ray.serve import Application

from mmserve.config import AppConfig, profile_path
from mmserve.errors import ConfigError
from mmserve.serve.ingress import Ingress
from mmserve.serve.jobs_worker import JobWorkerServer
from mmserve.serve.model_server import as_deployment, model_deployment
from mmserve.serve.plan import (
    INGRESS_NAME,
    JOBS_NAME,
    STORE_NAME,
    STORE_READER_NAME,
    has_jobs,
    has_store,
    ingress_options,
    ingress_placed,
    jobs_options,
    plan_models,
    store_options,
    store_reader_options,
)
from mmserve.serve.store_server import StoreServer, store_args

#: Environment variable naming the app config when the builder gets no ``config`` arg.
CONFIG_ENV = "MMSERVE_CONFIG"


def _as_config(config: AppConfig | str | Path) -> AppConfig:
    return config if isinstance(config, AppConfig) else AppConfig.load(config)


def build_app(config: AppConfig | str | Path) -> Application:
    """The Serve application for ``config`` (an :class:`AppConfig` or a path to one)."""
    app_config = _as_config(config)
    if not app_config.models:
        raise ConfigError(
            "the config defines no models, so there is nothing to serve",
            hint="add models under 'models:' (see the tiny profile: deployments/tiny.yaml)",
        )
    handles: dict[str, Application] = {}
    served_by: dict[str, list[str]] = {}
    for plan in plan_models(app_config):
        node = model_deployment(plan)
        served_by[plan.name] = list(plan.models)
        for model in plan.models:
            handles[model] = node
    store: Application | None = None
    readers: Application | None = None
    if has_store(app_config):
        store_cfg = app_config.store
        args = store_args(store_cfg.kind, app_config.store_location(), store_cfg.options)
        store = as_deployment(StoreServer, STORE_NAME, store_options(app_config)).bind(*args)
        served_by[STORE_NAME] = []
        reader_options = store_reader_options(app_config)
        if reader_options is not None:  # same location, reads only (see serving/store.py)
            reader = as_deployment(StoreServer, STORE_READER_NAME, reader_options)
            readers = reader.bind(*args, reader=True)
            served_by[STORE_READER_NAME] = []
    served_by[INGRESS_NAME] = ingress_placed(app_config)  # loaded in every ingress replica
    config_data = app_config.model_dump(mode="json")
    base_dir = str(app_config.base_dir)
    worker: Application | None = None
    if has_jobs(app_config):
        app_config.jobs_location()  # a config that cannot place the jobs fails here
        worker_deployment = as_deployment(JobWorkerServer, JOBS_NAME, jobs_options(app_config))
        # it loads the models placed in the ingress as well (a job may call them)
        served_by[JOBS_NAME] = ingress_placed(app_config)
        worker = worker_deployment.bind(
            config_data, base_dir, handles, dict(served_by), store, readers
        )
    ingress = as_deployment(Ingress, INGRESS_NAME, ingress_options(app_config))
    return ingress.bind(config_data, base_dir, handles, served_by, store, readers, worker)


def app_builder(args: dict[str, Any]) -> Application:
    """Ray Serve application builder: ``args = {"config": <path to an app config>}``, or
    ``{"profile": <a shipped profile: tiny, local, cluster>}`` (found in the package
    installed on each node, wherever that is).

    Without either, the path comes from ``$MMSERVE_CONFIG``.
    """
    if len(args) > 1 or not set(args) <= {"config", "profile"}:
        raise ConfigError(
            f"application args {sorted(args)}: give one of 'config' or 'profile'",
            hint="set args: {config: path/to/app-config.yaml} or {profile: cluster}",
        )
    if args.get("profile"):
        return build_app(profile_path(str(args["profile"])))
    path = args.get("config") or os.environ.get(CONFIG_ENV)
    if not path:
        raise ConfigError(
            "no app config given to the mmserve application builder",
            hint=f"set args: {{config: path/to/app-config.yaml}} or ${CONFIG_ENV}",
        )
    return build_app(str(path))


__all__ = ["CONFIG_ENV", "app_builder", "build_app"]
