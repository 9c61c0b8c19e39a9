"""The deploy wait of ServeSession, on Serve statuses made here: a replica that cannot load
its model fails the deploy at its first failure, with the model's reason; other failures are
left to Serve's retries."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from ray.serve._private.common import DeploymentStatus, DeploymentStatusTrigger, ReplicaState
from ray.serve.schema import ApplicationStatus, ApplicationStatusOverview, DeploymentStatusOverview

from mmserve.deploy.session import DeployFailure, deploy_failures, wait_running
from mmserve.errors import ModelLoadError, ServingError

pytestmark = pytest.mark.unit

LOAD = ModelLoadError(
    source="/models/empty",
    reason="BlipForConditionalGeneration: no file named model.safetensors",
    hint="check that the folder holds a complete model of this architecture",
)
# What Serve keeps in a deployment's message: its summary, then the replica's traceback.
TRACEBACK = (
    "\x1b[36mray::ServeReplica:mmserve:captioner.initialize_and_get_metadata()\x1b[39m "
    "(pid=4242, ip=10.0.0.7)\n"
    '  File "/src/mmserve/serve/model_server.py", line 80, in __init__\n'
    "    self.loaded = load(spec)\n"
    f"mmserve.errors.ModelLoadError: {LOAD}\n"
)
RETRYING = f"A replica failed to start with exception. Retrying 5 more time(s). Error:\n{TRACEBACK}"
CRASHED = (
    "A replica failed to start with exception. Retrying 2 more time(s). Error:\n"
    "ray.exceptions.ActorDiedError: The actor died unexpectedly before finishing this task."
)


def _deployment(
    status: DeploymentStatus, message: str = "", running: int = 0
) -> DeploymentStatusOverview:
    return DeploymentStatusOverview(
        status=status,
        status_trigger=DeploymentStatusTrigger.CONFIG_UPDATE_STARTED,
        replica_states={ReplicaState.RUNNING: running} if running else {},
        message=message,
    )


def _app(
    status: ApplicationStatus = ApplicationStatus.DEPLOYING, **deployments: DeploymentStatusOverview
) -> ApplicationStatusOverview:
    return ApplicationStatusOverview(
        status=status, message="", last_deployed_time_s=0.0, deployments=deployments
    )


def _reader(
    *apps: ApplicationStatusOverview | None,
) -> tuple[list[int], Callable[[], ApplicationStatusOverview | None]]:
    """A ``read_app`` answering ``apps`` in turn, and the count of reads it answered."""
    reads = [0]

    def read() -> ApplicationStatusOverview | None:
        reads[0] += 1
        return apps[min(reads[0], len(apps)) - 1]

    return reads, read


def test_a_model_load_error_is_found_while_serve_still_retries() -> None:
    app = _app(
        captioner=_deployment(DeploymentStatus.UPDATING, RETRYING),
        vqa=_deployment(DeploymentStatus.UPDATING),
        store=_deployment(DeploymentStatus.HEALTHY, running=1),
    )
    assert deploy_failures(app) == [DeployFailure("captioner", str(LOAD), model_load=True)]
    assert str(deploy_failures(app)[0]).startswith("deployment 'captioner': could not load model")
    # a reason over several lines (a warm-up's exception): its first line, not the last one
    warm = RETRYING.replace(f"{LOAD}\n", "could not load model 'x': warm-up failed: boom\n  at 3\n")
    failed = _app(
        ApplicationStatus.DEPLOY_FAILED, vqa=_deployment(DeploymentStatus.DEPLOY_FAILED, warm)
    )
    assert deploy_failures(failed) == [
        DeployFailure("vqa", "could not load model 'x': warm-up failed: boom", model_load=True)
    ]


def test_other_start_failures_count_only_once_serve_gives_up() -> None:
    # a crashed worker may start the next time: Serve's retries are left to run
    retrying = _app(captioner=_deployment(DeploymentStatus.UPDATING, CRASHED))
    assert deploy_failures(retrying) == []
    failed = _app(
        ApplicationStatus.DEPLOY_FAILED,
        captioner=_deployment(DeploymentStatus.DEPLOY_FAILED, CRASHED),
    )
    assert deploy_failures(failed) == [
        DeployFailure(
            "captioner",
            "The actor died unexpectedly before finishing this task.",
            model_load=False,
        )
    ]
    assert deploy_failures(None) == []


def test_the_wait_stops_at_the_first_model_load_error() -> None:
    reads, read = _reader(
        _app(captioner=_deployment(DeploymentStatus.UPDATING)),
        _app(captioner=_deployment(DeploymentStatus.UPDATING, RETRYING)),
        _app(ApplicationStatus.DEPLOY_FAILED),  # never read: the wait stopped before
    )
    sleeps: list[float] = []
    with pytest.raises(ServingError) as raised:
        wait_running(read, poll_s=0.25, sleep=sleeps.append)
    assert str(raised.value).startswith(
        f"the app failed to deploy: deployment 'captioner': could not load model "
        f"'/models/empty': {LOAD.reason}"
    )
    assert raised.value.hint == "the replica log above has the full traceback"
    assert (reads[0], sleeps) == (2, [0.25])


def test_the_wait_sits_through_other_failures_until_the_app_runs() -> None:
    reads, read = _reader(
        _app(captioner=_deployment(DeploymentStatus.UPDATING)),
        _app(captioner=_deployment(DeploymentStatus.UPDATING, CRASHED)),
        _app(ApplicationStatus.RUNNING, captioner=_deployment(DeploymentStatus.HEALTHY, running=2)),
    )
    sleeps: list[float] = []
    wait_running(read, sleep=sleeps.append)
    assert (reads[0], len(sleeps)) == (3, 2)


def test_the_wait_reports_serves_reason_when_it_gives_up() -> None:
    failed = _app(
        ApplicationStatus.DEPLOY_FAILED,
        captioner=_deployment(DeploymentStatus.DEPLOY_FAILED, CRASHED),
        vqa=_deployment(DeploymentStatus.HEALTHY, running=1),
    )
    _, read = _reader(failed)
    with pytest.raises(ServingError, match=r"deployment 'captioner': The actor died unexpectedly"):
        wait_running(read, sleep=lambda _s: None)
    _, gone = _reader(None)
    with pytest.raises(ServingError, match="Serve has no such application"):
        wait_running(gone, sleep=lambda _s: None)
