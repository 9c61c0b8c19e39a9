"""The app's view (what `mmserve status` prints) from Serve's instance details, why a model
deployment cannot take calls, and the ingress's fail fast (ReplicaWatch) on such a view."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, cast

import pytest

from mmserve.cli.status import render
from mmserve.errors import ModelUnavailableError
from mmserve.serve.fail_fast import ReplicaWatch, failing_fast
from mmserve.serve.status import AppView, app_view_of, unavailable

pytestmark = pytest.mark.unit

HEAD = {"NodeID": "head", "NodeManagerAddress": "10.0.0.1", "Alive": True, "Resources": {"CPU": 2}}
WORKER = {
    "NodeID": "worker",
    "NodeManagerAddress": "10.0.0.2",
    "Alive": True,
    "Resources": {"CPU": 1, "accel": 1, "memory": 1e9, "node:10.0.0.2": 1},
}


#: Resources that fit a node but not what is free now, and that fit no node.
BIG: dict[str, Any] = {"need": {"CPU": 1.5}}
HUGE: dict[str, Any] = {"need": {"CPU": 4.0}}


def _deployment(
    status: str, replicas: list[dict[str, Any]], need: dict[str, float], **config: Any
) -> dict[str, Any]:
    return {
        "status": status,
        "message": "",
        "target_num_replicas": 1,
        "required_resources": need,
        "deployment_config": {
            "user_config": {"max_batch_size": 8, "batch_wait_timeout_s": 0.0},
            **config,
        },
        "replicas": replicas,
    }


def _view(deployments: dict[str, dict[str, Any]], free: dict[str, float]) -> AppView:
    details = {"applications": {"mmserve": {"status": "DEPLOYING", "deployments": deployments}}}
    view = app_view_of("mmserve", details, [HEAD, WORKER], free)
    assert view is not None
    return view


def test_a_replica_no_node_can_take_is_pending_and_says_why() -> None:
    view = _view(
        {
            "vqa": _deployment(
                "HEALTHY", [{"state": "RUNNING", "node_id": "worker"}], {"CPU": 0.1, "accel": 1}
            ),
            "text_encoder": _deployment(
                "UPDATING", [{"state": "STARTING", "node_id": None}], {"CPU": 2, "accel": 1}
            ),
        },
        free={"CPU": 1.8, "accel": 0, "memory": 5e9},
    )
    vqa, text = view.deployments["vqa"], view.deployments["text_encoder"]
    assert (vqa.running, vqa.pending, unavailable(vqa)) == (1, 0, None)
    assert (text.running, text.pending, text.unschedulable) == (0, 1, True)
    assert text.models == ["text_encoder"]
    assert view.free == {"CPU": 1.8}  # memory is not a scheduling resource here
    kind, why = unavailable(text) or ("", "")
    assert kind == "pending"
    assert why == (
        "1 replica(s) cannot be scheduled: each asks for {CPU: 2, accel: 1}, no node of the "
        "cluster has that much (free in the cluster: {CPU: 1.8})"
    )


def test_a_replica_that_fits_a_node_but_not_the_free_resources_cannot_be_scheduled() -> None:
    view = _view(
        {"a+b": _deployment("UPDATING", [{"state": "STARTING"}], {"CPU": 1, "accel": 1})},
        free={"CPU": 0.5, "accel": 1},
    )
    found = view.deployments["a+b"]
    assert found.models == ["a", "b"]
    assert found.unschedulable and "not free now" in found.why


@pytest.mark.parametrize(
    ("status", "replicas", "options", "expected"),  # options: autoscaling, or "need"
    [
        # first replicas placed and loading: the call would wait for the load
        ("UPDATING", [{"state": "STARTING", "node_id": "head"}], None, "starting"),
        # a replica being placed on a node that has room
        ("UPDATING", [{"state": "STARTING"}], None, "starting"),
        ("DEPLOY_FAILED", [], None, "failed"),
        ("UNHEALTHY", [], None, "unhealthy"),
        # replicas died and Serve replaces them: the call waits (it is sent again)
        ("UNHEALTHY", [{"state": "STARTING", "node_id": "head"}], None, None),
        # scaled to zero on purpose: the call starts a replica
        ("HEALTHY", [], {"min_replicas": 0, "max_replicas": 2}, None),
        ("UPDATING", [{"state": "STARTING"}], {"min_replicas": 0, "max_replicas": 2}, None),
        # replacing dead replicas whose resources are not released yet: the call waits
        ("UNHEALTHY", [{"state": "STARTING"}, {"state": "STOPPING"}], BIG, None),
        # replacing a replica that no node can take any more (its node is gone)
        ("UNHEALTHY", [{"state": "STARTING"}], HUGE, "pending"),
        # a controller restart re-attaching to its replicas: they serve
        ("UPDATING", [{"state": "RECOVERING", "node_id": "head"}], None, None),
    ],
)
def test_when_a_model_deployment_cannot_take_calls(
    status: str,
    replicas: list[dict[str, Any]],
    options: dict[str, Any] | None,
    expected: str | None,
) -> None:
    scaling = dict(options or {})
    need = scaling.pop("need", {"CPU": 0.5})  # what each replica asks for (default: fits)
    config = {"autoscaling_config": scaling} if scaling else {}
    view = _view({"m": _deployment(status, replicas, need, **config)}, {"CPU": 1.0})
    reason = unavailable(view.deployments["m"])
    assert (reason[0] if reason else None) == expected


def _pending_view() -> AppView:
    return _view(
        {"m": _deployment("UPDATING", [{"state": "STARTING"}], {"CPU": 4})}, free={"CPU": 1.0}
    )


def _running_view() -> AppView:
    return _view(
        {"m": _deployment("HEALTHY", [{"state": "RUNNING", "node_id": "head"}], {"CPU": 0.5})},
        free={"CPU": 1.0},
    )


def test_a_call_to_a_pending_model_fails_fast_and_is_cancelled() -> None:
    reads: list[float] = []
    cancelled = asyncio.Event()

    def read() -> AppView:
        reads.append(time.monotonic())
        return _pending_view()

    async def never() -> str:
        try:
            await asyncio.Event().wait()  # what Serve does with a call no replica takes
        finally:
            cancelled.set()
        return "unreachable"

    async def scenario() -> None:
        watch = ReplicaWatch(read)
        with pytest.raises(ModelUnavailableError) as caught:
            await watch.watched("m", "m", never)
        await asyncio.sleep(0)  # the cancelled call runs its cleanup
        assert cancelled.is_set()
        assert caught.value.status == 503 and caught.value.kind == "pending"
        assert "model 'm' has no running replica: pending: 1 replica(s)" in str(caught.value)
        # the next call is refused before it is sent: the view already says so
        sent: list[bool] = []

        async def send() -> str:
            sent.append(True)
            return "sent"

        with pytest.raises(ModelUnavailableError):
            await watch.watched("m", "m", send)
        assert sent == []

    asyncio.run(scenario())
    assert len(reads) == 1  # the second call came within REFRESH_S: no second read


def test_a_slow_call_to_a_running_model_goes_on() -> None:
    looked = threading.Event()

    def read() -> AppView:
        looked.set()
        return _running_view()

    async def slow() -> str:
        # held until the watch has looked at the replicas: slow by construction, not by a sleep
        assert await asyncio.to_thread(looked.wait, 60)
        return "done"

    async def fast() -> str:
        return "fast"

    async def scenario() -> tuple[str, str]:
        watch = ReplicaWatch(read)
        return await watch.watched("m", "m", slow), await watch.watched("m", "m", fast)

    assert asyncio.run(scenario()) == ("done", "fast")
    assert looked.is_set()  # the slow call looked at the replicas; one was running, so it waited


def test_a_fast_call_never_reads_the_view() -> None:
    def read() -> AppView:
        raise AssertionError("a fast call must not ask the controller")

    async def fast() -> str:
        return "fast"

    assert asyncio.run(ReplicaWatch(read).watched("m", "m", fast)) == "fast"


def test_the_table_shows_replicas_nodes_asks_batching_and_why() -> None:
    view = _view(
        {
            "vqa": _deployment(
                "HEALTHY", [{"state": "RUNNING", "node_id": "worker"}], {"CPU": 0.1, "accel": 1}
            ),
            "text_encoder": _deployment(
                "UPDATING", [{"state": "STARTING", "node_id": None}], {"CPU": 2, "accel": 1}
            ),
        },
        free={"CPU": 1.8},
    )
    lines = render(view).splitlines()
    assert lines[0] == "app 'mmserve': DEPLOYING"
    assert lines[1].split() == [
        "DEPLOYMENT", "STATUS", "RUNNING", "PENDING", "STARTING", "NODES", "ASKS", "BATCH"
    ]  # fmt: skip
    asks_and_batch = ["accel", "1", "8", "/", "0", "ms"]
    assert lines[2].split() == [
        "text_encoder", "UPDATING", "0/1", "1", "0", "-", "CPU", "2,", *asks_and_batch
    ]  # fmt: skip
    assert lines[3].split() == [
        "vqa", "HEALTHY", "1/1", "0", "0", "10.0.0.2", "CPU", "0.1,", *asks_and_batch
    ]  # fmt: skip
    assert lines[4].startswith("text_encoder: pending: 1 replica(s) cannot be scheduled: each")
    assert lines[-1] == "free in the cluster: CPU 1.8"


class _Handle:
    """The parts of a DeploymentHandle the gateway uses: ``options``, ``remote`` and
    ``handle.method.remote``; its calls answer what they were called with."""

    def __init__(self, method: str = "__call__") -> None:
        self.method = method

    def options(self, *, method_name: str) -> _Handle:
        return _Handle(method_name)

    def __getattr__(self, name: str) -> _Handle:
        return _Handle(name)

    async def remote(self, *args: Any) -> tuple[str, tuple[Any, ...]]:
        return self.method, args


def test_the_gateway_s_handles_keep_working_through_the_watch() -> None:
    watch = ReplicaWatch(_running_view)
    handles = failing_fast({"m": cast(Any, _Handle())}, {"m": "m"}, watch)

    async def calls() -> list[Any]:
        handle = handles["m"]
        return [
            await handle.options(method_name="call").remote("embed", 1),
            await handle.space.remote(),
        ]

    assert asyncio.run(calls()) == [("call", ("embed", 1)), ("space", ())]


def test_a_watched_handle_refuses_a_pending_model_by_name() -> None:
    watch = ReplicaWatch(_pending_view)
    asyncio.run(watch.view())  # an earlier slow call found it pending
    handles = failing_fast({"text": cast(Any, _Handle())}, {"text": "m"}, watch)
    with pytest.raises(ModelUnavailableError, match=r"model 'text' \(deployment 'm'\)"):
        asyncio.run(handles["text"].options(method_name="call").remote("embed", 1))
