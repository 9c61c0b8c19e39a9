"""Files that run the app elsewhere: a Ray Serve config and a KubeRay RayService manifest.

Both come from :func:`serve_config`, whose per-deployment options are those of
:mod:`mmserve.serve.plan` (the same options :func:`~mmserve.serve.app.build_app` sets),
so ``serve run serve.yaml``, ``serve deploy`` and a RayService run exactly the app that
``mmserve serve`` runs. Options in the file override the code's, so operators can tune
replicas or batching there without touching the app config.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from mmserve.config import AppConfig
from mmserve.serve.plan import (
    APP_NAME,
    all_deployment_options,
    proxy_env,
    required_resources_names,
)
from mmserve.version import __version__

IMPORT_PATH = "mmserve.serve.app:app_builder"
RAY_VERSION = "2.60.0"
DEFAULT_IMAGE = f"mmserve:{__version__}"


def builder_args(config_path: str | None, profile: str | None) -> dict[str, str]:
    """The app builder's args (:func:`mmserve.serve.app.app_builder`): where each node finds
    the app config, a file at ``config_path`` or a shipped ``profile``; exactly one."""
    if (config_path is None) == (profile is None):
        raise ValueError("give exactly one of config_path and profile")
    return {"profile": profile} if profile is not None else {"config": str(config_path)}


def serve_config(
    config: AppConfig,
    *,
    config_path: str | None = None,
    profile: str | None = None,
    host: str | None = None,
    port: int | None = None,
) -> dict[str, Any]:
    """A Ray Serve config (``ServeDeploySchema``) running ``config``, found at ``config_path``
    wherever the app is built (the cluster's filesystem for ``serve deploy``), or, for a
    shipped ``profile``, in the package installed there."""
    return {
        "proxy_location": "EveryNode",
        "http_options": {
            "host": host or config.server.host,
            "port": config.server.port if port is None else port,
        },
        "applications": [
            {
                "name": APP_NAME,
                "route_prefix": "/",
                "import_path": IMPORT_PATH,
                "args": builder_args(config_path, profile),
                "deployments": all_deployment_options(config),
            }
        ],
    }


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (the RayService's embedded serve config)."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(data: dict[str, Any], *, header: str = "") -> str:
    """``data`` as YAML in key order, after ``header`` (comment lines)."""
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)
    return header + body


def ready_probe(port: int) -> dict[str, Any]:
    """A readiness probe on ``GET /v1/ready`` (200 once every deployment is ready; no API key
    needed): Kubernetes sends a node's traffic to its Serve proxy only while the app is ready."""
    return {
        "httpGet": {"path": "/v1/ready", "port": port},
        "initialDelaySeconds": 10,
        "periodSeconds": 5,
        "timeoutSeconds": 3,
        "failureThreshold": 3,
    }


def _container(
    name: str,
    image: str,
    cpu: str,
    memory: str,
    gpus: int,
    env: dict[str, str],
    probe: dict[str, Any] | None = None,
) -> dict[str, Any]:
    limits: dict[str, Any] = {"cpu": cpu, "memory": memory}
    if gpus:
        limits["nvidia.com/gpu"] = gpus
    extra = {"readinessProbe": probe} if probe else {}
    return {
        "name": name,
        "image": image,
        # Read by Serve's HTTP proxy, which runs on every node (server.transport).
        "env": [{"name": key, "value": value} for key, value in sorted(env.items())],
        "resources": {"limits": limits, "requests": {"cpu": cpu, "memory": memory}},
        **extra,
    }


def rayservice_manifest(
    config: AppConfig,
    *,
    config_path: str | None = None,
    profile: str | None = None,
    image: str = DEFAULT_IMAGE,
    name: str = "mmserve",
    max_workers: int = 4,
) -> dict[str, Any]:
    """A KubeRay ``RayService`` running the app: a head that schedules no replicas and an
    autoscaled group of one-GPU workers advertising the config's custom resources, ready
    (in the Serve service's endpoints) once ``GET /v1/ready`` answers 200. The head keeps
    KubeRay's own probes: it must be ready before the app can be deployed at all."""
    custom = {r: 1000 for r in required_resources_names(config)}
    worker_params: dict[str, str] = {}
    if custom:
        # `ray start --resources` takes JSON; KubeRay passes the value through a shell.
        worker_params["resources"] = json.dumps(json.dumps(custom, sort_keys=True))
    env = proxy_env(config)
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": name},
        "spec": {
            "serveConfigV2": dump_yaml(
                serve_config(config, config_path=config_path, profile=profile)
            ),
            "rayClusterConfig": {
                "rayVersion": RAY_VERSION,
                "enableInTreeAutoscaling": True,
                "headGroupSpec": {
                    # num-cpus 0: the head runs Ray's control plane and Serve's controller only.
                    "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},
                    "template": {
                        "spec": {"containers": [_container("ray-head", image, "2", "8Gi", 0, env)]}
                    },
                },
                "workerGroupSpecs": [
                    {
                        "groupName": "gpu-workers",
                        "replicas": 1,
                        "minReplicas": 1,
                        "maxReplicas": max_workers,
                        "rayStartParams": worker_params,
                        "template": {
                            "spec": {
                                "containers": [
                                    _container(
                                        "ray-worker",
                                        image,
                                        "8",
                                        "32Gi",
                                        1,
                                        env,
                                        probe=ready_probe(config.server.port),
                                    )
                                ]
                            }
                        },
                    }
                ],
            },
        },
    }


__all__ = [
    "DEFAULT_IMAGE",
    "IMPORT_PATH",
    "RAY_VERSION",
    "builder_args",
    "dump_yaml",
    "rayservice_manifest",
    "ready_probe",
    "serve_config",
]
