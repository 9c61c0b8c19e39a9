"""tiny:// builds: identical every time, reused from the cache, safe against racing builders;
and sources that cannot be loaded fail fast and clearly."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mmserve.errors import ModelLoadError
from mmserve.models.loader import load_backend
from mmserve.models.sources import tiny
from mmserve.models.spec import ModelSpec

pytestmark = pytest.mark.integration

ARCHS = sorted(tiny.BUILDERS)


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file of a built model folder, by name."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.iterdir())
        if path.is_file()
    }


@pytest.mark.parametrize("arch", ARCHS)
def test_builds_are_identical_across_cache_folders(
    arch: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = []
    for name in ("first", "second"):
        monkeypatch.setenv("MMSERVE_CACHE", str(tmp_path / name))
        folders.append(tiny.tiny_model_path(arch))
    assert folders[0] != folders[1]
    first, second = (digest(folder) for folder in folders)
    assert "model.safetensors" in first and "config.json" in first
    assert first == second


def test_cache_is_reused_without_rebuilding(
    tiny_folder: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tiny_folder("clip")
    before = digest(folder)

    def refuse(dest: Path) -> None:
        raise AssertionError("a cached tiny model must not be rebuilt")

    monkeypatch.setitem(tiny.BUILDERS, "clip", refuse)
    assert tiny.tiny_model_path("clip") == folder
    assert digest(folder) == before


def test_a_build_that_loses_the_race_keeps_the_winner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process finishing first (its rename lands while this one builds) is fine:
    this build is discarded, the winner's folder is used, no temporary folder is left."""
    monkeypatch.setenv("MMSERVE_CACHE", str(tmp_path))
    final = tmp_path / "tiny" / f"vilt-vqa-{tiny.BUILD_VERSION}"
    real_build = tiny.BUILDERS["vilt-vqa"]

    def racing_build(dest: Path) -> None:
        winner = tmp_path / "winner"
        winner.mkdir()
        real_build(winner)
        os.rename(winner, final)  # the other process completes first
        real_build(dest)

    monkeypatch.setitem(tiny.BUILDERS, "vilt-vqa", racing_build)
    assert tiny.tiny_model_path("vilt-vqa") == final
    assert [p.name for p in final.parent.iterdir()] == [final.name]
    assert (final / "model.safetensors").is_file()


def test_unknown_hub_id_fails_fast_with_an_offline_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as caught:
        load_backend("clip", ModelSpec(source="nobody-xyz/not-a-model"))
    assert "nobody-xyz/not-a-model" in caught.value.message
    assert caught.value.hint is not None and "--profile tiny" in caught.value.hint


def test_a_folder_that_is_not_a_model_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as caught:
        load_backend("sentence", ModelSpec(source=str(tmp_path)))
    assert str(tmp_path) in str(caught.value)
