"""The diffusion backends own their sources: `check_source` answers fast, without building
or loading anything, and names the sources each backend can load."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmserve.errors import ModelLoadError
from mmserve.models.backends.diffusion import InstructPix2PixBackend, TextToImageBackend
from mmserve.models.spec import ModelSpec

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("backend", "source"),
    [
        (TextToImageBackend, "tiny://stable-diffusion"),
        (TextToImageBackend, "random://sd-turbo"),
        (InstructPix2PixBackend, "tiny://instruct-pix2pix"),
    ],
)
def test_offline_pipelines_pass_without_being_built(
    backend: type[TextToImageBackend],
    source: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MMSERVE_CACHE", str(tmp_path))
    backend.check_source(ModelSpec(source=source))
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("backend", "source", "message"),
    [
        (InstructPix2PixBackend, "tiny://stable-diffusion", "tiny://instruct-pix2pix"),
        (TextToImageBackend, "tiny://instruct-pix2pix", "tiny://stable-diffusion"),
        (TextToImageBackend, "tiny://no-such-pipeline", "unknown tiny architecture"),
        (TextToImageBackend, "not a hub id!", "neither an existing folder nor a valid hub id"),
    ],
)
def test_sources_a_backend_cannot_load_are_refused_with_a_hint(
    backend: type[TextToImageBackend], source: str, message: str
) -> None:
    with pytest.raises(ModelLoadError) as refused:
        backend.check_source(ModelSpec(source=source))
    assert message in f"{refused.value.message} {refused.value.hint}"


def test_an_uncached_hub_id_offline_is_refused_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="not in the local Hugging Face cache"):
        TextToImageBackend.check_source(ModelSpec(source="example-org/no-such-diffusion-model"))
