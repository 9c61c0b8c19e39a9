"""The ingress sends a model call again only when its replica died, a bounded number of
times; the model's own errors are the call's answer."""

from __future__ import annotations

import asyncio

import pytest
from ray.exceptions import ActorDiedError
from ray.serve._private.common import DeploymentID
from ray.serve.exceptions import DeploymentUnavailableError

from mmserve.errors import InputError
from mmserve.serve import replica_retry
from mmserve.serve.replica_retry import send_again_if_replica_dies

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replica_retry, "BACKOFF_S", 0.0)


def _script(*outcomes: object) -> tuple[list[int], object]:
    sent: list[int] = []

    async def send() -> object:
        sent.append(1)
        outcome = outcomes[min(len(sent), len(outcomes)) - 1]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return sent, send


def test_a_call_whose_replica_died_is_sent_again() -> None:
    unavailable = DeploymentUnavailableError(DeploymentID(name="captioner", app_name="mmserve"))
    sent, send = _script(ActorDiedError(), unavailable, "a red image")
    assert asyncio.run(send_again_if_replica_dies(send, what="model 'c'")) == "a red image"  # type: ignore[arg-type]
    assert len(sent) == 3


def test_the_models_own_error_is_not_repeated() -> None:
    sent, send = _script(InputError("not an image"), "never")
    with pytest.raises(InputError):
        asyncio.run(send_again_if_replica_dies(send, what="model 'c'"))  # type: ignore[arg-type]
    assert len(sent) == 1


def test_repeats_are_bounded() -> None:
    sent, send = _script(ActorDiedError())
    with pytest.raises(ActorDiedError):
        asyncio.run(send_again_if_replica_dies(send, what="model 'c'", attempts=3))  # type: ignore[arg-type]
    assert len(sent) == 3
