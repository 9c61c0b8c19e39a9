"""The mmserve-milvus plugin's own test suite (plugins/mmserve-milvus/tests: the store
contract mmserve ships, and what only Milvus does), run as its author runs it: pytest in the
plugin's folder, with the package pip-installed (here on PYTHONPATH, entry point included)."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from milvus_plugin import PLUGIN, install_plugin
from mmserve.testing.store_contract import (
    BrowsingContract,
    ImagesOnRequestContract,
    VectorStoreContract,
)

pytestmark = pytest.mark.unit

CONTRACTS = (VectorStoreContract, BrowsingContract, ImagesOnRequestContract)


def test_the_plugin_passes_the_store_contract_and_its_own_tests(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    site = install_plugin(tmp_path_factory)
    report = tmp_path / "report.xml"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"],
        cwd=PLUGIN,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    cases = list(ET.parse(report).getroot().iter("testcase"))
    assert not [c.get("name") for c in cases if len(c)], "failed, errored or skipped cases"
    ran = {
        (c.get("classname", "").rsplit(".", 1)[-1], c.get("name", "").split("[")[0]) for c in cases
    }
    contract = {name for cls in CONTRACTS for name in dir(cls) if name.startswith("test_")}
    assert {name for cls, name in ran if cls == "TestMilvusStore"} == contract
    assert {name for cls, name in ran if cls == "test_store"} >= {
        "test_collections_items_and_images_survive_reopening",
        "test_a_second_process_is_refused_clearly",
        "test_browsing_pages_walk_every_item_once_in_id_order",
    }


def test_the_plugin_guide_shows_the_plugins_contract_test_as_it_is() -> None:
    """docs/plugins.md shows how a store runs the shipped contract with this file: a copy."""
    guide = (PLUGIN.parents[1] / "docs" / "plugins.md").read_text(encoding="utf-8")
    name = "# plugins/mmserve-milvus/tests/test_contract.py\n"
    start = guide.index("```python\n" + name) + len("```python\n" + name)
    shown = guide[start : guide.index("```", start)]
    assert shown == (PLUGIN / "tests" / "test_contract.py").read_text(encoding="utf-8")
