"""What gets deployed: the Serve deployments of an app config and their options.

This module is the single source of truth for both :func:`mmserve.serve.app.build_app`
(deploying from code) and ``mmserve build`` (the Ray Serve config file and the KubeRay
RayService), so the two can never disagree. It imports no Ray.

Each model of the config becomes one deployment with its own scaling, unless it says
``placement: ingress``: then every ingress replica loads it and calls it in process (no
hop), and the ingress's replicas ask for its resources on top of their own. Models that
would load exactly the same weights with exactly the same serving options (CLIP's image and
text towers in most configs) share one deployment, so a replica loads those weights once and
serves both roles; give them different options (say ``replicas``) and they split into two
deployments.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mmserve.config import AppConfig, BatchConfig, ModelConfig
from mmserve.models.sources.resolve import absolute_source
from mmserve.models.spec import ModelSpec

#: Serve application name and the names of the deployments that are not models.
APP_NAME = "mmserve"
INGRESS_NAME = "ingress"
STORE_NAME = "store"
#: The store's reader replicas (``store.replicas`` / ``store.autoscaling``), beside the writer.
STORE_READER_NAME = "store_reader"
#: The job worker deployment (jobs.enabled).
JOBS_NAME = "jobs"

#: CPUs reserved per ingress replica: it parses HTTP and runs the (async, light) engine.
INGRESS_CPUS = 0.5
#: The store replica mostly waits on disk or object storage.
STORE_CPUS = 0.25

#: Ray Serve's switch for its HTTP proxy -> ingress hop, read by the proxy process from its
#: node's environment (``mmserve serve`` sets it for the Ray it starts; see ``proxy_env``).
GRPC_PROXY_ENV = "RAY_SERVE_PROXY_USE_GRPC"
#: Ray Serve's switch for its HAProxy ingress (``server.proxy: haproxy``), read by the Serve
#: controller and the ingress replicas from their node's environment.
HAPROXY_ENV = "RAY_SERVE_ENABLE_HA_PROXY"
#: Largest gRPC message a replica accepts, read by each replica; Serve's default is 4 MiB.
GRPC_MAX_MESSAGE_ENV = "RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH"
_GRPC_MAX = 2**31 - 1
_GRPC_SLACK = 16 * 1024 * 1024


def grpc_max_message_bytes(config: AppConfig) -> int:
    """The largest message a replica must accept: a whole request body (proxy -> ingress) or
    one decoded image of the largest allowed size, 4 bytes a pixel (ingress -> model)."""
    limits = config.server.limits
    return min(_GRPC_MAX, max(limits.max_body_bytes, 4 * limits.max_image_pixels) + _GRPC_SLACK)


def transport_env(config: AppConfig) -> dict[str, str]:
    """Environment variables every replica of the app gets for ``server.transport``.

    With ``grpc`` (the default) the ingress calls the model and store deployments over Ray
    Serve's gRPC data plane (:func:`mmserve.serve.handles.with_transport`) and the replicas
    accept messages as large as the config's limits allow. Measured on 2 CPU cores
    (``benchmarks/README.md``): a one-step workflow at concurrency 1 takes 11.7 ms instead of
    18.5 ms, each further step ~4 ms instead of ~7 ms.
    """
    if config.server.transport == "actor":
        return {}
    return {GRPC_MAX_MESSAGE_ENV: str(grpc_max_message_bytes(config))}


def proxy_env(config: AppConfig) -> dict[str, str]:
    """What the nodes' environment needs for Serve's front door: ``server.proxy`` and, for
    Serve's own proxy, ``server.transport``.

    With ``proxy: haproxy`` Serve runs HAProxy in place of its Python proxy and each ingress
    replica answers HTTP itself, so no proxy -> ingress call is made at all.
    With gRPC the proxy's channel to the ingress reads its receive limit from the same
    variable as the replicas, in the proxy's own process: left unset it keeps gRPC's 4 MiB,
    and any answer larger than that (one stored image of a few MB) fails as a plain-text 500.
    The answer comes from the app's own ingress, so the proxy accepts gRPC's largest message.
    """
    front = {HAPROXY_ENV: "1"} if config.server.proxy == "haproxy" else {}
    if config.server.transport != "grpc":
        return {**front, GRPC_PROXY_ENV: "0"}
    return {**front, GRPC_PROXY_ENV: "1", GRPC_MAX_MESSAGE_ENV: str(_GRPC_MAX)}


#: Serve's per-request access log line, off for the internal hops (model and store calls):
#: the proxy logs every HTTP request and the ingress logs it with its route and status, so a
#: line per model call would only multiply the console output by the number of steps.
INTERNAL_LOGGING = {"enable_access_log": False}


def _with_env(actor_options: dict[str, Any], config: AppConfig) -> dict[str, Any]:
    env = transport_env(config)
    return {**actor_options, "runtime_env": {"env_vars": env}} if env else actor_options


@dataclass(frozen=True)
class ModelDeploymentPlan:
    """One model deployment: the models (config keys) it serves and its Serve options."""

    name: str
    models: tuple[str, ...]
    roles: tuple[str, ...]
    backend: str
    spec: ModelSpec
    #: Deployment options in Ray Serve's config-file schema (``name`` excluded); the same
    #: keys are accepted by ``Deployment.options``.
    options: dict[str, Any] = field(default_factory=dict)
    #: The roles its replicas warm up before ready: those of its models with ``warmup`` on.
    warmup_roles: tuple[str, ...] = ()


def batch_user_config(batch: BatchConfig) -> dict[str, Any]:
    """The ``user_config`` a model deployment reads its batching from (live-updatable)."""
    return {"max_batch_size": batch.max_size, "batch_wait_timeout_s": batch.wait_ms / 1000.0}


def model_options(model: ModelConfig) -> dict[str, Any]:
    """Serve deployment options for one model's scaling, resources, queueing and batching."""
    options: dict[str, Any] = {}
    if model.autoscaling is not None:
        scaling = model.autoscaling
        options["autoscaling_config"] = {
            "min_replicas": scaling.min_replicas,
            "initial_replicas": max(scaling.min_replicas, 1),
            "max_replicas": scaling.max_replicas,
            "target_ongoing_requests": scaling.target_ongoing_requests,
        }
    else:
        options["num_replicas"] = model.replicas or 1
    options["max_ongoing_requests"] = model.max_ongoing_requests
    options["max_queued_requests"] = model.max_queued_requests
    options["ray_actor_options"] = {
        "num_cpus": model.cpus,
        "num_gpus": model.gpus,
        "resources": dict(sorted(model.resources.items())),
    }
    if model.memory is not None:
        options["ray_actor_options"]["memory"] = model.memory
    options["user_config"] = batch_user_config(model.batch)
    return options


def _sharing_key(model: ModelConfig) -> str:
    """Models with equal keys load the same weights and are served the same way.

    ``warmup`` is not part of it: models differing only there still share a deployment, whose
    replicas warm the roles of the models that have it on."""
    return json.dumps(
        {"backend": model.backend, "spec": model.to_spec().model_dump(), **model_options(model)},
        sort_keys=True,
    )


def scale_to_zero_deployments(config: AppConfig) -> frozenset[str]:
    """The model deployments that may have no replica (``autoscaling.min_replicas: 0``)."""
    return frozenset(
        plan.name
        for plan in plan_models(config)
        if plan.options.get("autoscaling_config", {}).get("min_replicas") == 0
    )


def plan_models(config: AppConfig) -> list[ModelDeploymentPlan]:
    """The model deployments of ``config``, in config order (shared ones merged); models
    placed in the ingress (``placement: ingress``) have none: see :func:`plan_ingress_models`."""
    return _plans(config, "deployment")


def plan_ingress_models(config: AppConfig) -> list[ModelDeploymentPlan]:
    """The models every ingress replica loads itself (``placement: ingress``), shared the
    same way; ``name`` names the in-ingress server and ``options`` hold its ``user_config``."""
    return _plans(config, "ingress")


def ingress_placed(config: AppConfig) -> list[str]:
    """Config names of the models placed in the ingress."""
    return [name for name, model in config.models.items() if model.placement == "ingress"]


def _plans(config: AppConfig, placement: str) -> list[ModelDeploymentPlan]:
    groups: dict[str, list[str]] = {}
    for name, model in config.models.items():
        if model.placement == placement:
            groups.setdefault(_sharing_key(model), []).append(name)
    plans = []
    for names in groups.values():
        first = config.models[names[0]]
        # Replicas run in other folders (and on other nodes): relative folders go absolute.
        spec = first.to_spec()
        spec = spec.model_copy(update={"source": absolute_source(spec.source, config.base_dir)})
        options = (
            _model_options_in(config, first)
            if placement == "deployment"
            else {"user_config": batch_user_config(first.batch)}
        )
        plans.append(
            ModelDeploymentPlan(
                name="+".join(names),
                models=tuple(names),
                roles=tuple(config.role_of(name) for name in names),
                backend=first.backend,
                spec=spec,
                options=options,
                warmup_roles=tuple(
                    sorted({config.role_of(n) for n in names if config.models[n].warmup})
                ),
            )
        )
    return plans


def _model_options_in(config: AppConfig, model: ModelConfig) -> dict[str, Any]:
    options = model_options(model)
    options["ray_actor_options"] = _with_env(options["ray_actor_options"], config)
    options["logging_config"] = dict(INTERNAL_LOGGING)
    return options


def deployment_of(config: AppConfig) -> dict[str, str]:
    """Config model name -> the name of the deployment serving it."""
    return {model: plan.name for plan in plan_models(config) for model in plan.models}


def ingress_actor_resources(config: AppConfig) -> dict[str, Any]:
    """What one ingress replica asks Ray for: :data:`INGRESS_CPUS`, plus the ``cpus``,
    ``gpus``, ``memory`` and ``resources`` of each model placed in it (models sharing weights
    once)."""
    cpus, gpus, memory = INGRESS_CPUS, 0.0, 0
    resources: dict[str, float] = {}
    for plan in plan_ingress_models(config):
        model = config.models[plan.models[0]]
        cpus += model.cpus
        gpus += model.gpus
        memory += model.memory or 0
        for name, amount in model.resources.items():
            resources[name] = resources.get(name, 0.0) + amount
    actor: dict[str, Any] = {"num_cpus": cpus}
    if gpus:
        actor["num_gpus"] = gpus
    if memory:
        actor["memory"] = memory
    if resources:
        actor["resources"] = dict(sorted(resources.items()))
    return actor


def ingress_options(config: AppConfig) -> dict[str, Any]:
    # The ingress waits on model calls, so it may hold many requests at once; past its
    # bounded queue Serve's proxy answers 503 + Retry-After at once instead of piling up.
    server = config.server
    return {
        "num_replicas": server.ingress_replicas,
        "max_ongoing_requests": server.max_ongoing_requests,
        "max_queued_requests": server.max_queued_requests,
        "backpressure_config": {"status_code": 503, "retry_after_s": server.retry_after_s},
        "ray_actor_options": _with_env(ingress_actor_resources(config), config),
    }


def store_options(config: AppConfig) -> dict[str, Any]:
    # Exactly one replica: it is the single writer that serialises ingests (see store.py).
    return {
        "num_replicas": 1,
        "max_ongoing_requests": 64,
        "ray_actor_options": _with_env({"num_cpus": STORE_CPUS}, config),
        "logging_config": dict(INTERNAL_LOGGING),
    }


def store_reader_options(config: AppConfig) -> dict[str, Any] | None:
    """The reader replicas' deployment options, or None when the config has none: each
    opens the same store location and answers reads, while the writer keeps the writes."""
    store = config.store
    if not (has_store(config) and store.readers):
        return None
    options = store_options(config)
    if store.autoscaling is not None:
        scaling = store.autoscaling
        del options["num_replicas"]
        options["autoscaling_config"] = {
            "min_replicas": scaling.min_replicas,
            "initial_replicas": scaling.min_replicas,
            "max_replicas": scaling.max_replicas,
            "target_ongoing_requests": scaling.target_ongoing_requests,
        }
    else:
        options["num_replicas"] = store.replicas
    return options


def min_store_readers(config: AppConfig) -> int:
    """How many reader replicas run at the app's smallest scale."""
    options = store_reader_options(config)
    if options is None:
        return 0
    scaling = options.get("autoscaling_config")
    return int(scaling["min_replicas"] if scaling is not None else options["num_replicas"])


def has_store(config: AppConfig) -> bool:
    """Whether the served app runs a store deployment (every config names a store kind)."""
    return bool(config.store.kind)


def has_jobs(config: AppConfig) -> bool:
    """Whether the served app runs job workers (and the API takes jobs)."""
    return config.jobs.enabled


def jobs_options(config: AppConfig) -> dict[str, Any]:
    """The job worker deployment's options: its replicas (or autoscaling), and one
    ongoing request per job it may run (the Celery thread pool's size)."""
    jobs = config.jobs
    options: dict[str, Any] = {
        "num_replicas": jobs.replicas,
        "max_ongoing_requests": jobs.max_concurrent_jobs,
        "ray_actor_options": _with_env({"num_cpus": jobs.cpus}, config),
        "logging_config": dict(INTERNAL_LOGGING),
        # a job left running by a stopping replica is recovered by a live one (lease_s)
        "graceful_shutdown_timeout_s": 5,
    }
    if jobs.autoscaling is not None:
        scaling = jobs.autoscaling
        del options["num_replicas"]
        options["autoscaling_config"] = {
            "min_replicas": scaling.min_replicas,
            "initial_replicas": max(scaling.min_replicas, 1),
            "max_replicas": scaling.max_replicas,
            "target_ongoing_requests": scaling.target_ongoing_requests,
        }
    return options


def required_resources_names(config: AppConfig) -> list[str]:
    """Custom Ray resources (node placement) that some model asks for."""
    return sorted({name for model in config.models.values() for name in model.resources})


def all_deployment_options(config: AppConfig) -> list[dict[str, Any]]:
    """Every deployment of the app as Serve config-file entries (``name`` first)."""
    entries = [{"name": INGRESS_NAME, **ingress_options(config)}]
    entries += [{"name": plan.name, **plan.options} for plan in plan_models(config)]
    if has_store(config):
        entries.append({"name": STORE_NAME, **store_options(config)})
    readers = store_reader_options(config)
    if readers is not None:
        entries.append({"name": STORE_READER_NAME, **readers})
    if has_jobs(config):
        entries.append({"name": JOBS_NAME, **jobs_options(config)})
    return entries


__all__ = [
    "APP_NAME",
    "GRPC_MAX_MESSAGE_ENV",
    "GRPC_PROXY_ENV",
    "HAPROXY_ENV",
    "INGRESS_NAME",
    "JOBS_NAME",
    "STORE_NAME",
    "STORE_READER_NAME",
    "ModelDeploymentPlan",
    "all_deployment_options",
    "batch_user_config",
    "deployment_of",
    "grpc_max_message_bytes",
    "has_jobs",
    "has_store",
    "ingress_actor_resources",
    "ingress_options",
    "ingress_placed",
    "jobs_options",
    "min_store_readers",
    "model_options",
    "plan_ingress_models",
    "plan_models",
    "proxy_env",
    "required_resources_names",
    "scale_to_zero_deployments",
    "store_options",
    "store_reader_options",
    "transport_env",
]
