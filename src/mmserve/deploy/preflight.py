"""Checks run before starting Ray, so that a config that cannot serve fails in seconds.

Starting Ray and Serve costs tens of seconds, and a replica whose model cannot load is
retried by Serve again and again. These checks catch the common causes first, on the
caller's machine, with messages that say how to fix them: workflows that do not validate,
hub models with no network (pointing at the offline tiny profile), and missing folders.
Whether the replicas fit on the cluster's nodes is :mod:`mmserve.deploy.capacity`'s check.
"""

from __future__ import annotations

import math
import socket

from mmserve.agents import load_agents
from mmserve.config import AppConfig
from mmserve.errors import ConfigError
from mmserve.models.loader import check_source_of
from mmserve.models.sources.resolve import absolute_source
from mmserve.registry import registry
from mmserve.serve.plan import (
    STORE_CPUS,
    has_store,
    ingress_actor_resources,
    min_store_readers,
    plan_models,
)
from mmserve.workflow import load_workflows


def check_workflows(config: AppConfig) -> int:
    """Load every workflow and agent of the config (raises WorkflowValidationError or its
    subclass AgentValidationError); returns the count of workflows."""
    workflows = load_workflows([p for p in config.workflow_paths() if p.exists()])
    # the agents are checked against these workflows and the models (AgentValidationError)
    load_agents([p for p in config.agent_paths() if p.exists()], workflows=workflows, config=config)
    return len(workflows)


def check_models(config: AppConfig) -> None:
    """Check every model's backend and role, and ask each backend whether its source loads.

    Raises PluginNotFoundError, ConfigError or ModelLoadError. Each backend decides what its
    ``source`` means (``check_source``): Hugging Face backends resolve hub ids and folders
    now and check ``tiny://``/``random://``/``pkg://`` names without building anything; a
    plugin's backend may take a URL, a name or nothing.
    """
    for name, model in config.models.items():
        info = registry.info("model", model.backend)
        # (the registration's roles, when it lists them: the check imports no torch)
        roles = info.meta.get("roles") or sorted(registry.get("model", model.backend).roles)
        role = config.role_of(name)
        if role not in roles:
            raise ConfigError(
                f"model {name!r}: backend {model.backend!r} does not serve the role {role!r} "
                f"(it serves {', '.join(sorted(roles))})",
                hint="pick a backend for that role (`mmserve plugins` lists them)",
            )
        spec = model.to_spec()
        source = absolute_source(spec.source, config.base_dir)
        check_source_of(model.backend, spec.model_copy(update={"source": source}))


def check_port_free(host: str, port: int) -> None:
    """Fail now when the HTTP port is taken, rather than after Ray and Serve have started."""
    if port == 0:
        return
    bind_host = "" if host in ("0.0.0.0", "::") else host
    with socket.socket() as sock:
        # As the HTTP server does: a port left in TIME_WAIT by a previous run is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind_host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot serve on {host}:{port}: {exc.strerror or exc}",
                hint="pick another port with --port, or stop what is using it",
            ) from exc


def check_address_reachable(address: str, *, timeout_s: float = 5.0) -> None:
    """Probe a ``host:port`` Ray address (``auto`` and ``ray://`` are left to Ray): Ray itself
    retries an unreachable GCS for minutes before it gives up."""
    if address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(
            f"invalid Ray address {address!r}", hint="use <head-ip>:6379, or auto on a node"
        )
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return
    except OSError as exc:
        raise ConfigError(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}",
            hint="check the head node's address and port (6379 by default) and the network",
        ) from exc


def required_resources(config: AppConfig) -> dict[str, float]:
    """What the app needs at its smallest scale: every deployment's minimum replicas."""
    ingress = ingress_actor_resources(config)  # with the models placed in it
    replicas = config.server.ingress_replicas
    need: dict[str, float] = {
        "CPU": ingress["num_cpus"] * replicas,
        "GPU": ingress.get("num_gpus", 0.0) * replicas,
    }
    for name, amount in ingress.get("resources", {}).items():
        need[name] = amount * replicas
    if has_store(config):
        need["CPU"] += STORE_CPUS * (1 + min_store_readers(config))
    for plan in plan_models(config):
        scaling = plan.options.get("autoscaling_config")
        replicas = (
            max(scaling["min_replicas"], 1) if scaling is not None else plan.options["num_replicas"]
        )
        actor = plan.options["ray_actor_options"]
        need["CPU"] += actor["num_cpus"] * replicas
        need["GPU"] += actor["num_gpus"] * replicas
        for name, amount in actor["resources"].items():
            need[name] = need.get(name, 0.0) + amount * replicas
    return need


def embedded_cpus(config: AppConfig, available: int) -> int:
    """Logical CPUs for an embedded single-machine Ray: at least what the config asks for.

    Ray's ``CPU`` is a scheduling count, not a core pin; on one machine every replica shares
    the cores anyway, so a laptop with fewer cores than the config's total still serves.
    """
    return max(available, math.ceil(required_resources(config)["CPU"]))


__all__ = [
    "check_address_reachable",
    "check_models",
    "check_port_free",
    "check_workflows",
    "embedded_cpus",
    "required_resources",
]
