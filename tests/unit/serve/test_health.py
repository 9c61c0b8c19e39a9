"""Readiness from Serve's status: a deployment scaled to zero on purpose is not 'not ready'."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from ray.exceptions import RayActorError
from ray.serve._private.common import DeploymentStatus, DeploymentStatusTrigger, ReplicaState
from ray.serve.schema import ApplicationStatus, ApplicationStatusOverview, DeploymentStatusOverview

from mmserve.config import AppConfig
from mmserve.http.schemas.workflows import HealthResponse
from mmserve.serve.health import HealthReader, health_of
from mmserve.serve.plan import scale_to_zero_deployments

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


def _app(*deployments: DeploymentStatusOverview) -> ApplicationStatusOverview:
    return ApplicationStatusOverview(
        status=ApplicationStatus.RUNNING,
        message="",
        last_deployed_time_s=0.0,
        deployments={f"d{n}": d for n, d in enumerate(deployments)},
    )


def _recovering(status: DeploymentStatus, **states: int) -> DeploymentStatusOverview:
    return DeploymentStatusOverview(
        status=status,
        status_trigger=DeploymentStatusTrigger.CONFIG_UPDATE_STARTED,
        replica_states={ReplicaState[name]: count for name, count in states.items()},
        message="",
    )


def test_replicas_found_again_after_a_controller_restart_keep_the_app_ready() -> None:
    # what Serve reported after the fault suite SIGKILLed its controller (issue 15): every
    # deployment UPDATING, its live replicas RECOVERING; requests went on succeeding
    app = _app(
        _recovering(DeploymentStatus.UPDATING, RECOVERING=1),
        _recovering(DeploymentStatus.UPDATING, RECOVERING=1, RUNNING=1),
    )
    health = health_of(app, {})
    assert (health.status, health.ready) == ("ok", True)
    assert [d.replicas for d in health.deployments.values()] == [1, 2]
    assert "controller restarted" in health.deployments["d0"].message
    # a deployment still starting a replica is not ready, recovering or not
    starting = _app(_recovering(DeploymentStatus.UPDATING, RECOVERING=1, STARTING=1))
    assert health_of(starting, {}).status == "starting"


def test_the_health_reader_answers_the_last_report_while_the_controller_is_away() -> None:
    ready = health_of(_app(_deployment(1)), {})
    answers: list[object] = [ready]
    gate = threading.Event()
    gate.set()

    def read() -> HealthResponse:
        gate.wait(timeout=30)
        answer = answers[0]
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, HealthResponse)
        return answer

    async def scenario() -> list[HealthResponse]:
        reader = HealthReader(read, timeout_s=0.2)
        seen = [await reader()]
        answers[0] = RayActorError()  # the controller's actor died
        seen.append(await reader())
        answers[0] = health_of(None, {})  # the new controller has not recovered the app yet
        seen.append(await reader())
        gate.clear()  # the controller does not answer at all
        seen.append(await reader())
        gate.set()
        return seen

    first, died, no_app, silent = asyncio.run(scenario())
    assert first.ready and first.message == ""
    for health in (died, no_app, silent):
        assert (health.status, health.ready) == ("ok", True)
        assert health.message.endswith("its last report")
    assert "RayActorError" in died.message
    assert "recovering" in no_app.message
    assert "did not answer within 0.2 s" in silent.message


def test_the_health_reader_says_starting_until_the_controller_first_answers() -> None:
    def read() -> HealthResponse:
        raise RayActorError()

    health = asyncio.run(HealthReader(read)())
    assert (health.status, health.ready) == ("starting", False)
    assert "could not be asked" in health.message


def test_a_read_that_ends_after_its_caller_gave_up_still_updates_the_report() -> None:
    # a slow controller (every read over the timeout) must not freeze the report
    answers = [health_of(None, {}), health_of(_app(_deployment(1)), {})]
    gates = [threading.Event() for _ in range(3)]
    calls: list[int] = []

    def read() -> HealthResponse:
        n = len(calls)
        calls.append(n)
        gates[n].wait(timeout=30)
        return answers[min(n, 1)]

    async def scenario() -> list[HealthResponse]:
        reader = HealthReader(read, timeout_s=0.05)

        async def settle() -> None:  # the read under way has ended and been recorded
            while reader._pending is not None and not reader._pending.done():
                await asyncio.sleep(0.01)
            await asyncio.sleep(0)

        gates[0].set()
        await reader()
        await settle()
        waiting = await reader()  # the 2nd read hangs: the last report, starting
        gates[1].set()
        await settle()  # it ends with nobody waiting for it
        later = await reader()  # the 3rd hangs: the last report is the 2nd read's
        gates[2].set()
        await settle()
        return [waiting, later]

    waiting, later = asyncio.run(scenario())
    assert waiting.status == "starting"
    assert (later.status, later.ready) == ("ok", True)
    assert "did not answer" in later.message
