"""Readiness from Serve's status: a deployment scaled to zero on purpose is not 'not ready'."""

from __future__ import annotations

from pathlib import Path

import pytest
from ray.serve._private.common import DeploymentStatus, DeploymentStatusTrigger, ReplicaState
from ray.serve.schema import ApplicationStatus, ApplicationStatusOverview, DeploymentStatusOverview

from mmserve.config import AppConfig
from mmserve.serving.health import health_of
from mmserve.serving.plan import scale_to_zero_deployments

pytestmark = pytest.mark.unit


def _deployment(running: int) -> DeploymentStatusOverview:
    return DeploymentStatusOverview(
        status=DeploymentStatus.HEALTHY,
        status_trigger=DeploymentStatusTrigger.AUTOSCALING,
        replica_states={ReplicaState.RUNNING: running} if running else {},
        message="",
    )


def test_a_model_scaled_to_zero_by_autoscaling_keeps_the_app_ready(tmp_path: Path) -> None:
    fake = {"backend": "fake", "source": "fake://"}
    config = AppConfig.from_dict(
        {
            "models": {
                "captioner": {**fake, "autoscaling": {"min_replicas": 0, "max_replicas": 2}},
                "vqa": {**fake, "source": "fake://other"},
            }
        },
        base_dir=tmp_path,
    )
    zero = scale_to_zero_deployments(config)
    assert zero == {"captioner"}
    app = ApplicationStatusOverview(
        status=ApplicationStatus.RUNNING,
        message="",
        last_deployed_time_s=0.0,
        deployments={"captioner": _deployment(0), "vqa": _deployment(1)},
    )
    health = health_of(app, {"captioner": ["captioner"], "vqa": ["vqa"]}, zero)
    assert (health.status, health.ready) == ("ok", True)
    assert health.deployments["captioner"].replicas == 0
    # a deployment that must keep a replica is not ready with none running
    app.deployments["vqa"] = _deployment(0)
    assert not health_of(app, {"captioner": ["captioner"], "vqa": ["vqa"]}, zero).ready
