"""What crosses to a model replica: the served gateway reduces an upload to the model's input
size in the ingress, so a 12-megapixel photo sends the model's pixels, not 36 MB.

The replica is the real :class:`ModelServer` on the tiny CLIP, driven in process (Serve's
batching needs no Ray); its handle is a stand-in that pickles every call's arguments, as Ray
does between the ingress and the replica, and records their size.
"""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import numpy as np
import pytest
from benchmarks.photos import jpeg, synthetic_photo

from mmserve.config import AppConfig
from mmserve.gateway.local import LocalGateway
from mmserve.media.deferred import DeferredImage, open_upload
from mmserve.models.spec import ModelSpec
from mmserve.serve.handles import HandleGateway
from mmserve.serve.in_ingress import PlacedGateway, start_ingress_models
from mmserve.serve.model_server import ModelServer

pytestmark = pytest.mark.integration

MODELS = {
    "image_encoder": {"backend": "clip", "source": "tiny://clip"},
    "text_encoder": {"backend": "clip", "source": "tiny://clip"},
}


class PicklingHandle:
    """The parts of a DeploymentHandle the gateway uses; arguments cross pickled."""

    def __init__(self, server: ModelServer, sent: list[int], method: str = "call") -> None:
        self._server, self.sent, self._method = server, sent, method

    def options(self, *, method_name: str) -> PicklingHandle:
        return PicklingHandle(self._server, self.sent, method_name)

    def __getattr__(self, name: str) -> PicklingHandle:
        return PicklingHandle(self._server, self.sent, name)

    def remote(self, *args: Any) -> Any:
        data = pickle.dumps(args)
        self.sent.append(len(data))
        return getattr(self._server, self._method)(*pickle.loads(data))


@pytest.fixture(autouse=True)
def _outside_a_replica(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve's batch queue reads the replica context only to warn; there is none here."""
    from ray.serve.batching import _BatchQueue

    monkeypatch.setattr(
        _BatchQueue, "_warn_if_max_batch_size_exceeds_max_ongoing_requests", lambda self: None
    )


def test_a_photo_crosses_at_the_model_input_size_and_gives_the_local_vector() -> None:
    config = AppConfig.from_dict({"models": MODELS})
    spec = ModelSpec(source="tiny://clip").model_dump()
    server = ModelServer("clip", spec, ["image_encoder", "text_encoder"])
    server.reconfigure({"max_batch_size": 4, "batch_wait_timeout_s": 0.0})
    sent: list[int] = []
    handle: Any = PicklingHandle(server, sent)
    gateway = HandleGateway(config, {"image_encoder": handle, "text_encoder": handle})
    data = jpeg(synthetic_photo(4000, 3000))
    upload = open_upload(data)
    assert isinstance(upload, DeferredImage)

    async def served() -> Any:
        return (await gateway.call("image_encoder", "embed_images", upload)).value

    vector = asyncio.run(served())
    crossed = sent[-1]  # the call itself (the first send asked the replica its input size)
    assert not upload.decoded  # the full 12 megapixels were never decoded
    assert crossed < 1_000_000 < len(pickle.dumps(upload))  # (what crossed before: 36 MB)
    local = LocalGateway(config)
    expected = asyncio.run(local.call("image_encoder", "embed_images", upload)).value
    np.testing.assert_allclose(np.asarray(vector), np.asarray(expected), atol=1e-6)


def test_a_model_in_the_ingress_reads_the_reduced_photo_too() -> None:
    config = AppConfig.from_dict(
        {"models": {name: {**model, "placement": "ingress"} for name, model in MODELS.items()}}
    )
    started = start_ingress_models(config)
    gateway = PlacedGateway(config, LocalGateway(config), started)
    upload = open_upload(jpeg(synthetic_photo(4000, 3000)))
    assert isinstance(upload, DeferredImage)

    async def served() -> Any:
        one = await gateway.call("image_encoder", "embed_images", upload)
        batch = await gateway.call_batch("image_encoder", "embed_images", [upload, upload])
        return one.value, batch.items

    vector, batch = asyncio.run(served())
    # reduced from the draft preview, as for a model deployment: no 12-megapixel decode
    assert not upload.decoded
    expected = asyncio.run(LocalGateway(config).call("image_encoder", "embed_images", upload))
    for got in (vector, *batch):
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected.value), atol=1e-6)
