"""The mmserve-milvus store plugin (plugins/mmserve-milvus) for the tests that use it.

In process it is imported from its source folder (importing registers the ``milvus`` store);
a CLI subprocess gets it installed for real (``pip --target``, entry point included) on its
``PYTHONPATH``. pymilvus and milvus-lite come from the test extra.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "plugins" / "mmserve-milvus"
PIP_INSTALL = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]


def import_plugin() -> None:
    """Register the ``milvus`` store kind in this process."""
    source = str(PLUGIN / "src")
    if source not in sys.path:
        sys.path.insert(0, source)
    import mmserve_milvus  # noqa: F401  (importing registers the store)


def install_plugin(site: Path) -> Path:
    """Install the package into ``site`` (for ``PYTHONPATH``) and return ``site``."""
    subprocess.run([*PIP_INSTALL, "--target", str(site), str(PLUGIN)], check=True, timeout=300)
    return site


def wait_for_index(db: Path, collection: str) -> None:
    """Wait for Milvus Lite's background index build on ``collection`` (in this process's
    engine for ``db``), so that searches run on the index. Milvus Lite has no public call
    for it (describe_index always says Finished): private engine API, tests only."""
    from milvus_lite.server_manager import server_manager_instance

    _, engine, _ = server_manager_instance._servers[str(db.resolve())]
    engine.get_collection(collection)._wait_for_bg()
