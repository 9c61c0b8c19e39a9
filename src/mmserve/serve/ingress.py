"""The ingress deployment: the HTTP API (FastAPI under ``serve.ingress``) around the engine.

Each ingress replica rebuilds the app config, loads the workflows, and runs one workflow
:class:`~mmserve.workflow.Engine` whose gateway is a
:class:`~mmserve.serve.handles.HandleGateway` over the model deployments and whose store
is a :class:`~mmserve.serve.store_server.StoreClient` of the store deployment (and its readers).
Model calls whose replica dies are sent again (:mod:`mmserve.serve.replica_retry`); a call
to a model with no running replica fails fast (:mod:`mmserve.serve.fail_fast`). Models
placed in the ingress (``placement: ingress``) are loaded, warmed and called in the replica
itself (:mod:`mmserve.serve.in_ingress`). The engine itself never sees Ray.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.serve.handle import DeploymentHandle

from mmserve.agents import load_agents
from mmserve.config import AppConfig
from mmserve.http.api import ApiRuntime, create_api
from mmserve.jobs.service import JobService
from mmserve.registry import registry
from mmserve.serve.fail_fast import ReplicaWatch, failing_fast
from mmserve.serve.handles import HandleGateway, with_transport
from mmserve.serve.health import HealthReader, app_health
from mmserve.serve.in_ingress import PlacedGateway, start_ingress_models
from mmserve.serve.metered import MeteredEngine, MeteredGateway
from mmserve.serve.plan import APP_NAME, scale_to_zero_deployments
from mmserve.serve.replica_retry import again_if_replica_dies
from mmserve.serve.status import read_app_view
from mmserve.serve.store_server import StoreClient
from mmserve.tracing import configure as configure_tracing
from mmserve.workflow import load_workflows


def replica_engine(
    config: AppConfig,
    models: dict[str, DeploymentHandle[Any]],
    deployments: dict[str, list[str]],
    store: DeploymentHandle[Any] | None,
    store_readers: DeploymentHandle[Any] | None,
) -> tuple[MeteredEngine, str]:
    """The engine of a replica that runs workflows (an ingress, a job worker) and the app's
    name: model calls over the handles (sent again if their replica dies, failing fast when
    none runs), models placed in the ingress loaded here, the store deployment's client."""
    transport = config.server.transport
    # model calls are pure: sent again if their replica dies (never the store's writes)
    models = {
        name: again_if_replica_dies(with_transport(handle, transport), model=name)
        for name, handle in models.items()
    }
    try:
        app_name = serve.get_replica_context().app_name
    except Exception:  # not in a replica: the default name
        app_name = APP_NAME
    # a call to a model with no running replica answers 503 at once (fail_fast.py)
    deployment_of = {model: name for name, served in deployments.items() for model in served}
    models = failing_fast(models, deployment_of, ReplicaWatch(partial(read_app_view, app_name)))
    store_client = None
    if store is not None:  # reads to the readers when there are any, writes to the writer
        readers = None if store_readers is None else with_transport(store_readers, transport)
        store_client = StoreClient(with_transport(store, transport), readers)
    # models placed in the ingress: loaded and warmed here, before the replica is ready
    gateway = PlacedGateway(config, HandleGateway(config, models), start_ingress_models(config))
    # runs and model calls recorded as metrics (mmserve.serve.metrics)
    engine = MeteredEngine(MeteredGateway(gateway, config), store=store_client, registry=registry)
    return engine, app_name


class IngressServer:
    """An ingress replica (a Serve deployment class; see the module docstring)."""

    def __init__(
        self,
        config_data: dict[str, Any],
        base_dir: str,
        models: dict[str, DeploymentHandle[Any]],
        deployments: dict[str, list[str]],
        store: DeploymentHandle[Any] | None = None,
        store_readers: DeploymentHandle[Any] | None = None,
        jobs_worker: DeploymentHandle[Any] | None = None,
    ) -> None:
        """``models``: config model name -> handle (models placed in the ingress have none);
        ``deployments``: deployment name -> the models it serves (for health); ``store``: the
        store deployment (its writer), if any; ``store_readers``: its reader replicas;
        ``jobs_worker``: the job worker deployment (the ingress only queues jobs: the handle
        binds the deployment into the app)."""
        configure_tracing()  # spans exported when OTEL_EXPORTER_OTLP_ENDPOINT is set
        config = AppConfig.from_dict(config_data, base_dir=Path(base_dir))
        registry.ensure_loaded()
        workflows = load_workflows([p for p in config.workflow_paths() if p.exists()])
        engine, app_name = replica_engine(config, models, deployments, store, store_readers)
        self._runtime = ApiRuntime(
            config=config,
            engine=engine,
            workflows=workflows,
            health=HealthReader(
                partial(app_health, app_name, deployments, scale_to_zero_deployments(config))
            ),
            registry=registry,
            behind_serve_proxy=True,
            agents=load_agents(
                [p for p in config.agent_paths() if p.exists()], workflows=workflows, config=config
            ),
            jobs=JobService.from_config(config) if jobs_worker is not None else None,
        )

    def __serve_build_asgi_app__(self) -> FastAPI:
        # Serve calls this after __init__: the routes close over this replica's runtime.
        return create_api(self._runtime)


#: The deployment class: the app is supplied per replica by ``__serve_build_asgi_app__``.
Ingress = serve.ingress()(IngressServer)

__all__ = ["Ingress", "IngressServer", "replica_engine"]
