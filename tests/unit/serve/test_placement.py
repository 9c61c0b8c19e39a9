"""``placement: ingress``: the config checks, the plan, and what `mmserve build` writes (no Ray)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema
from typer.testing import CliRunner

from mmserve.cli.main import app as cli
from mmserve.config import AppConfig
from mmserve.deploy.capacity import Node, asks_of, fit
from mmserve.deploy.preflight import required_resources
from mmserve.errors import ConfigError
from mmserve.serve.plan import (
    deployment_of,
    ingress_options,
    ingress_placed,
    plan_ingress_models,
    plan_models,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def _config(models: dict[str, Any], **extra: Any) -> AppConfig:
    return AppConfig.from_dict({"models": models, **extra}, base_dir=ROOT)


def _fake(**options: Any) -> dict[str, Any]:
    return {"backend": "fake", "source": "fake://", **options}


def test_placement_defaults_to_a_deployment_of_its_own() -> None:
    config = _config({"captioner": _fake()})
    assert config.models["captioner"].placement == "deployment"
    assert [plan.name for plan in plan_models(config)] == ["captioner"]
    assert plan_ingress_models(config) == []
    assert ingress_options(config)["ray_actor_options"]["num_cpus"] == 0.5


@pytest.mark.parametrize(
    ("option", "named"),
    [
        ({"replicas": 2}, "replicas (server.ingress_replicas)"),
        (
            {"autoscaling": {"min_replicas": 1, "max_replicas": 3}},
            "autoscaling (server.ingress_replicas)",
        ),
        ({"max_queued_requests": 10}, "max_queued_requests (server.max_queued_requests)"),
    ],
)
def test_scaling_options_on_a_model_in_the_ingress_are_config_errors(
    option: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _config({"captioner": _fake(placement="ingress", **option)})
    message = str(caught.value)
    assert "models.captioner" in message
    assert f"placement 'ingress' takes {named.split(' ')[0]} from the ingress" in message
    assert named.split(" ")[1].strip("()") in message
    assert "use placement 'deployment'" in message


def test_an_unknown_placement_and_a_batch_larger_than_the_ingress_takes_are_errors() -> None:
    with pytest.raises(ConfigError, match="placement.*'deployment' or 'ingress'"):
        _config({"captioner": _fake(placement="sidecar")})
    too_big = _fake(placement="ingress", batch={"max_size": 64}, max_ongoing_requests=64)
    with pytest.raises(ConfigError, match=r"batch.max_size \(64\) must be <= server.max_ongoing"):
        _config({"captioner": too_big}, server={"max_ongoing_requests": 32})
    _config({"captioner": too_big}, server={"max_ongoing_requests": 64})  # fits


def test_models_in_the_ingress_have_no_deployment_and_share_weights_like_deployments() -> None:
    config = _config(
        {
            "image_encoder": _fake(placement="ingress"),
            "text_encoder": _fake(placement="ingress", warmup=False),
            "captioner": _fake(placement="ingress", batch={"max_size": 4, "wait_ms": 2}),
            "vqa": _fake(),
        }
    )
    assert [plan.name for plan in plan_models(config)] == ["vqa"]
    assert deployment_of(config) == {"vqa": "vqa"}
    assert ingress_placed(config) == ["image_encoder", "text_encoder", "captioner"]
    plans = {plan.name: plan for plan in plan_ingress_models(config)}
    assert set(plans) == {"image_encoder+text_encoder", "captioner"}
    assert plans["image_encoder+text_encoder"].warmup_roles == ("image_encoder",)
    assert plans["captioner"].options == {
        "user_config": {"max_batch_size": 4, "batch_wait_timeout_s": 0.002}
    }


def test_the_ingress_asks_for_what_its_models_need() -> None:
    config = _config(
        {
            # sharing one set of weights: counted once
            "image_encoder": _fake(placement="ingress", cpus=2, gpus=0.25, resources={"a": 1}),
            "text_encoder": _fake(placement="ingress", cpus=2, gpus=0.25, resources={"a": 1}),
            "captioner": _fake(placement="ingress", cpus=0.5, gpus=0.5, resources={"b": 2}),
            "vqa": _fake(cpus=1, gpus=1),  # its own deployment: not the ingress's
        },
        server={"ingress_replicas": 2},
    )
    actor = ingress_options(config)["ray_actor_options"]
    assert actor["num_cpus"] == pytest.approx(0.5 + 2 + 0.5)
    assert actor["num_gpus"] == pytest.approx(0.75)
    assert actor["resources"] == {"a": 1, "b": 2}
    assert ingress_options(config)["num_replicas"] == 2
    need = required_resources(config)  # two ingress replicas + the store + vqa
    assert need["CPU"] == pytest.approx(2 * 3.0 + 0.25 + 1)
    assert need["GPU"] == pytest.approx(2 * 0.75 + 1)
    assert need["a"] == 2 and need["b"] == 4
    # the ingress asks for the GPU of the model placed in it
    outcome = fit(
        asks_of(_config({"captioner": _fake(placement="ingress", gpus=1)})),
        [Node("cpu-only", {"CPU": 8.0})],
    )
    assert [(row.ask.deployment, row.why) for row in outcome.pending] == [
        ("ingress", "no node has GPUs")
    ]


def test_mmserve_build_writes_the_grown_ingress_and_no_deployment_for_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "app.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "models": {
                    "text_encoder": _fake(placement="ingress", cpus=2, gpus=0.5),
                    "captioner": _fake(),
                },
                "store": {"kind": "memory"},
                "workflows": [],
            }
        )
    )
    runner = CliRunner()
    served = runner.invoke(cli, ["build", "--config", str(config), "-o", str(tmp_path / "s.yaml")])
    assert served.exit_code == 0, served.output
    built = yaml.safe_load((tmp_path / "s.yaml").read_text())
    ServeDeploySchema.model_validate(built)
    deployments = {d["name"]: d for d in built["applications"][0]["deployments"]}
    assert set(deployments) == {"ingress", "captioner", "store", "jobs"}
    ingress = deployments["ingress"]["ray_actor_options"]
    assert (ingress["num_cpus"], ingress["num_gpus"]) == (2.5, 0.5)

    kuberay = tmp_path / "rayservice.yaml"
    args = ["build", "--config", "app.yaml", "--kuberay", "--app-root", "/app"]
    result = runner.invoke(cli, [*args, "-o", str(kuberay)])
    assert result.exit_code == 0, result.output
    manifest = yaml.safe_load(kuberay.read_text())
    inner = yaml.safe_load(manifest["spec"]["serveConfigV2"])
    assert inner["applications"][0]["args"] == {"config": "/app/app.yaml"}
    assert inner["applications"][0]["deployments"] == built["applications"][0]["deployments"]


def test_docs_show_placement_ingress_in_a_checked_snippet() -> None:
    """The scaling docs document the option with an app-config snippet (checked as YAML by
    tests/unit/test_docs_snippets.py) that places a model in the ingress."""
    text = (ROOT / "docs" / "cluster.md").read_text(encoding="utf-8")
    assert "placement: ingress" in text


def test_a_model_in_the_ingress_survives_the_config_round_trip_of_the_ingress() -> None:
    """The ingress rebuilds the config from its full JSON dump (every field set)."""
    config = _config({"captioner": _fake(placement="ingress")})
    again = AppConfig.from_dict(config.model_dump(mode="json"), base_dir=ROOT)
    assert again.models["captioner"].placement == "ingress"
