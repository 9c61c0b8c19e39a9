"""Failures of handle calls become mmserve errors with a message a user can act on."""

from __future__ import annotations

import pytest
from grpc import StatusCode
from grpc.aio import AioRpcError, Metadata

from mmserve.errors import InputError, ServiceUnavailableError, ServingError
from mmserve.serve.handles import translate_error

pytestmark = pytest.mark.unit


def _rpc_error(code: StatusCode, details: str) -> AioRpcError:
    return AioRpcError(code, Metadata(), Metadata(), details=details)


def test_grpc_failures_name_the_callee_and_the_status() -> None:
    too_big = translate_error(
        "model 'captioner'",
        _rpc_error(StatusCode.RESOURCE_EXHAUSTED, "Received message larger than max"),
    )
    assert isinstance(too_big, ServingError)
    assert "model 'captioner' failed (gRPC RESOURCE_EXHAUSTED: Received message" in str(too_big)
    assert "server.transport: actor" in (too_big.hint or "")
    gone = translate_error("the store", _rpc_error(StatusCode.UNAVAILABLE, "connection reset"))
    assert isinstance(gone, ServiceUnavailableError)
    assert "the store is unavailable (gRPC UNAVAILABLE: connection reset)" in str(gone)


def test_errors_that_are_not_ray_or_grpc_pass_through() -> None:
    error = InputError("bad")
    assert translate_error("model 'x'", error) is error


def test_a_replicas_own_exception_over_grpc_is_a_serving_error_naming_the_callee() -> None:
    """Over gRPC a model's plain exception reaches the ingress as itself (no RayTaskError):
    it is the model's failure (502 serving_error), not the ingress's (500 internal_error)."""
    failed = translate_error("model 'captioner'", ValueError("tokenizer exploded"))
    assert isinstance(failed, ServingError)
    assert str(failed).startswith("model 'captioner' failed: ValueError: tokenizer exploded")
    assert "replica's log" in (failed.hint or "")


def test_a_call_running_past_its_own_time_limit_names_the_callee() -> None:
    late = translate_error("the store", TimeoutError())
    assert isinstance(late, ServingError)
    assert str(late).startswith("the store did not answer within its call time limit")
