"""The deployment plan, the built Serve config and the RayService manifest (no Ray started)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from mmserve.config import AppConfig
from mmserve.deploy.preflight import embedded_cpus, required_resources
from mmserve.deploy.serve_config import dump_yaml, rayservice_manifest, serve_config
from mmserve.errors import ConfigError
from mmserve.serve.plan import deployment_of, grpc_max_message_bytes, plan_models, proxy_env

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
CLUSTER = ROOT / "deployments" / "cluster.yaml"


def _config(models: dict[str, Any], **extra: Any) -> AppConfig:
    return AppConfig.from_dict({"models": models, **extra}, base_dir=ROOT)


def _fake(**options: Any) -> dict[str, Any]:
    return {"backend": "fake", "source": "fake://", **options}


def test_identical_models_share_a_deployment_and_different_ones_do_not() -> None:
    config = _config(
        {
            "image_encoder": _fake(),
            "text_encoder": _fake(),
            "captioner": _fake(replicas=2),
            "vqa": _fake(batch={"max_size": 4, "wait_ms": 1}),
        }
    )
    plans = {plan.name: plan for plan in plan_models(config)}
    assert set(plans) == {"image_encoder+text_encoder", "captioner", "vqa"}
    assert plans["image_encoder+text_encoder"].roles == ("image_encoder", "text_encoder")
    assert deployment_of(config)["text_encoder"] == "image_encoder+text_encoder"
    assert plans["captioner"].options["num_replicas"] == 2
    assert plans["vqa"].options["user_config"] == {
        "max_batch_size": 4,
        "batch_wait_timeout_s": 0.001,
    }


def test_options_carry_scaling_resources_and_queue_limits() -> None:
    config = _config(
        {
            "captioner": _fake(
                autoscaling={"min_replicas": 0, "max_replicas": 3, "target_ongoing_requests": 4},
                cpus=0.5,
                gpus=0.25,
                resources={"accel": 1},
                max_ongoing_requests=32,
                max_queued_requests=10,
            )
        }
    )
    (plan,) = plan_models(config)
    assert "num_replicas" not in plan.options
    assert plan.options["autoscaling_config"] == {
        "min_replicas": 0,
        "initial_replicas": 1,
        "max_replicas": 3,
        "target_ongoing_requests": 4.0,
    }
    actor_options = dict(plan.options["ray_actor_options"])
    assert set(actor_options.pop("runtime_env")) == {"env_vars"}  # the transport's
    assert actor_options == {
        "num_cpus": 0.5,
        "num_gpus": 0.25,
        "resources": {"accel": 1.0},
    }
    assert plan.options["max_ongoing_requests"] == 32
    assert plan.options["max_queued_requests"] == 10


def test_relative_model_folders_become_absolute_for_replicas() -> None:
    config = _config({"captioner": {"backend": "blip-caption", "source": "./models/blip"}})
    (plan,) = plan_models(config)
    assert plan.spec.source == str(ROOT / "models" / "blip")


def test_built_cluster_config_is_a_valid_serve_config_with_fractional_gpus() -> None:
    config = AppConfig.load(CLUSTER)
    built = serve_config(config, config_path="/app/deployments/cluster.yaml")
    schema = ServeDeploySchema.model_validate(yaml.safe_load(dump_yaml(built)))
    (app,) = schema.applications
    assert app.import_path == "mmserve.serve.app:app_builder"
    assert app.args == {"config": "/app/deployments/cluster.yaml"}
    models = [d for d in app.deployments if d.name not in ("ingress", "store")]
    gpus = {d.name: d.ray_actor_options.num_gpus for d in models}
    assert gpus["image_encoder+text_encoder"] == 0.25
    assert gpus["captioner"] == 0.5
    assert all(d.autoscaling_config for d in models)
    # and in the YAML text itself, as an operator reads it
    assert "num_gpus: 0.25" in dump_yaml(built)


def test_committed_rayservice_manifest_matches_the_cluster_profile() -> None:
    """deployments/kuberay/rayservice.yaml is generated; regenerate it when this fails:
    mmserve build --config deployments/cluster.yaml --kuberay --app-root /app
    -o deployments/kuberay/rayservice.yaml"""
    committed = yaml.safe_load((ROOT / "deployments/kuberay/rayservice.yaml").read_text())
    expected = rayservice_manifest(
        AppConfig.load(CLUSTER), config_path="/app/deployments/cluster.yaml"
    )
    assert committed == yaml.safe_load(dump_yaml(expected))
    serve_part = yaml.safe_load(committed["spec"]["serveConfigV2"])
    ServeDeploySchema.model_validate(serve_part)


def test_rayservice_workers_are_ready_only_when_the_app_is() -> None:
    manifest = rayservice_manifest(AppConfig.load(CLUSTER), config_path="/app/c.yaml")
    cluster = manifest["spec"]["rayClusterConfig"]
    (worker,) = cluster["workerGroupSpecs"][0]["template"]["spec"]["containers"]
    assert worker["readinessProbe"]["httpGet"] == {"path": "/v1/ready", "port": 8000}
    (head,) = cluster["headGroupSpec"]["template"]["spec"]["containers"]
    assert "readinessProbe" not in head  # KubeRay's own: the head must be up to deploy


def test_custom_resources_are_advertised_by_the_rayservice_workers() -> None:
    config = _config({"vqa": _fake(resources={"accel": 1})})
    manifest = rayservice_manifest(config, config_path="/app/c.yaml")
    (workers,) = manifest["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    assert workers["rayStartParams"]["resources"] == '"{\\"accel\\": 1000}"'


def test_required_resources_count_minimum_replicas() -> None:
    config = _config({"captioner": _fake(replicas=2, cpus=0.5, gpus=0.25, resources={"a": 1})})
    need = required_resources(config)
    assert need["GPU"] == 0.5
    assert need["a"] == 2
    # ingress 0.5 + store 0.25 + 2 x 0.5
    assert need["CPU"] == pytest.approx(1.75)
    assert embedded_cpus(config, available=1) == 2
    assert embedded_cpus(config, available=16) == 16


def test_a_taken_port_fails_before_anything_starts() -> None:
    import socket

    from mmserve.deploy.preflight import check_port_free

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}"):
            check_port_free("127.0.0.1", port)


def test_build_command_regenerates_the_committed_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import typer
    from typer.testing import CliRunner

    from mmserve.cli.serve import build

    app = typer.Typer()
    app.command()(build)
    app.command("noop")(lambda: None)  # a group, as when mounted in `mmserve`
    monkeypatch.chdir(ROOT)
    output = tmp_path / "rayservice.yaml"
    args = ["build", "--config", "deployments/cluster.yaml", "--kuberay", "--app-root", "/app"]
    result = CliRunner().invoke(app, [*args, "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert output.read_text() == (ROOT / "deployments/kuberay/rayservice.yaml").read_text()


def test_an_unreachable_cluster_address_fails_at_once() -> None:
    import socket

    from mmserve.deploy.preflight import check_address_reachable

    with socket.socket() as probe:  # a port nothing listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        with pytest.raises(ConfigError, match="cannot reach the Ray cluster"):
            check_address_reachable(f"127.0.0.1:{port}", timeout_s=2)
    with pytest.raises(ConfigError, match="invalid Ray address"):
        check_address_reachable("head-node")
    check_address_reachable("auto")  # left to Ray


def test_every_deployment_gets_the_transport_of_the_config() -> None:
    config = _config(
        {"captioner": _fake()},
        server={"limits": {"max_body_bytes": 8 * 2**20, "max_image_pixels": 1_000_000}},
    )
    built = serve_config(config, config_path="/srv/c.yaml")
    (app,) = built["applications"]
    envs = {
        d["name"]: d["ray_actor_options"]["runtime_env"]["env_vars"] for d in app["deployments"]
    }
    assert set(envs) == {"ingress", "captioner", "store", "jobs"}
    for env in envs.values():
        # the larger of a whole body (8 MiB) and one decoded image (4 bytes a pixel), + 16 MiB
        assert env == {"RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH": str(24 * 2**20)}
    # one access-log line per HTTP request (proxy, ingress), none per model or store call
    logging = {d["name"]: d.get("logging_config") for d in app["deployments"]}
    assert logging == {
        "ingress": None,
        "captioner": {"enable_access_log": False},
        "store": {"enable_access_log": False},
        "jobs": {"enable_access_log": False},
    }
    ServeDeploySchema.model_validate(built)
    # the proxy reads its switch from the node's environment: the RayService sets it
    manifest = rayservice_manifest(config, config_path="/srv/c.yaml")
    cluster = manifest["spec"]["rayClusterConfig"]
    containers = [cluster["headGroupSpec"]["template"]["spec"]["containers"][0]]
    containers += [g["template"]["spec"]["containers"][0] for g in cluster["workerGroupSpecs"]]
    for container in containers:
        assert {"name": "RAY_SERVE_PROXY_USE_GRPC", "value": "1"} in container["env"]
        # the proxy's channel to the ingress reads its receive limit there too (answers > 4 MiB)
        limit = {"name": "RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH", "value": str(2**31 - 1)}
        assert limit in container["env"]


def test_actor_transport_turns_grpc_off_and_huge_limits_stay_within_grpc() -> None:
    actor = _config({"captioner": _fake()}, server={"transport": "actor"})
    (plan,) = plan_models(actor)
    assert "runtime_env" not in plan.options["ray_actor_options"]
    manifest = rayservice_manifest(actor, config_path="/srv/c.yaml")
    head = manifest["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    assert head["containers"][0]["env"] == [{"name": "RAY_SERVE_PROXY_USE_GRPC", "value": "0"}]
    huge = _config({"captioner": _fake()}, server={"limits": {"max_image_pixels": 10**9}})
    assert grpc_max_message_bytes(huge) == 2**31 - 1
    with pytest.raises(ConfigError, match="transport"):
        _config({"captioner": _fake()}, server={"transport": "http"})


def test_cluster_docs_give_hand_started_clusters_the_proxys_environment() -> None:
    """docs/cluster.md tells operators what to export before `ray start`: what the app sets."""
    text = (ROOT / "docs" / "cluster.md").read_text(encoding="utf-8")
    env = proxy_env(_config({"captioner": _fake()}))
    for name, value in env.items():
        assert f"{name}={value}" in text, name


def test_warmup_is_not_part_of_sharing_and_the_plan_warms_the_roles_that_ask() -> None:
    config = _config(
        {
            "image_encoder": _fake(),
            "text_encoder": _fake(warmup=False),
            "captioner": _fake(replicas=2, warmup=False),
            "vqa": _fake(replicas=3),
        }
    )
    plans = {plan.name: plan for plan in plan_models(config)}
    assert set(plans) == {"image_encoder+text_encoder", "captioner", "vqa"}
    assert plans["image_encoder+text_encoder"].warmup_roles == ("image_encoder",)
    assert plans["captioner"].warmup_roles == ()
    assert plans["vqa"].warmup_roles == ("vqa",)
