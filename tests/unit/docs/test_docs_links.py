"""Every relative link of README.md, docs/ and the contributor guides names a file inside the
repository (README once linked ../shared/DESIGN.md, which a clone does not have); every path
and module the guides (ARCHITECTURE.md, CONTRIBUTING.md) name exists, so a move of a module
that leaves them behind fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mmserve.registry import ENTRY_POINT_GROUP

ROOT = Path(__file__).resolve().parents[3]
GUIDES = [ROOT / "ARCHITECTURE.md", ROOT / "CONTRIBUTING.md"]
DOCS = sorted([ROOT / "README.md", *GUIDES, *(ROOT / "docs").glob("*.md")])
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_PATH_IN_CODE = re.compile(r"`(\.\./[^`\s]+)`")
#: A repository path as the guides write it: src/mmserve/serve/ingress.py, tests/unit,
#: tests/unit/serving/test_api_*.py (a pattern: it must match something), src/mmserve/media/.
_REPO_PATH = re.compile(
    r"(?<![\w./*-])((?:src|tests|plugins|scripts|deployments|docs|benchmarks)/[\w./*-]*[\w*/])"
)
#: A dotted module name, maybe followed by one attribute (``.name`` or ``:name``).
_MODULE = re.compile(r"(?<![\w./-])(mmserve(?:\.\w+)+)(?::(\w+))?")
#: Dotted names starting with "mmserve." that are not modules: the entry-point group.
_NOT_MODULES = {ENTRY_POINT_GROUP}

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_relative_links_stay_inside_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    targets = [t for t in _LINK.findall(text) if "://" not in t and not t.startswith("#")]
    targets += _PATH_IN_CODE.findall(text) if doc.name == "README.md" else []
    for target in targets:
        path = (doc.parent / target.partition("#")[0]).resolve()
        assert path.is_relative_to(ROOT), f"{doc.name} links {target}, outside the repository"
        assert path.exists(), f"{doc.name} links {target}, which does not exist"


def repo_paths(text: str) -> list[str]:
    return sorted(set(_REPO_PATH.findall(text)))


def module_file(dotted: str) -> Path | None:
    """The source file of module ``dotted`` under src/, or None when there is none."""
    base = ROOT / "src" / Path(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def missing_module(dotted: str, attribute: str | None) -> str | None:
    """Why ``dotted`` (``[:attribute]``) names nothing, or None when it names a module, or an
    attribute the longest module prefix defines or imports."""
    if dotted in _NOT_MODULES:
        return None
    parts = dotted.split(".")
    for cut in range(len(parts), 1, -1):
        file = module_file(".".join(parts[:cut]))
        if file is None:
            continue
        rest = parts[cut:] + ([attribute] if attribute else [])
        if not rest:
            return None
        if len(rest) > 1:
            return f"{'.'.join(rest)} is not one name of {'.'.join(parts[:cut])}"
        if re.search(rf"\b{re.escape(rest[0])}\b", file.read_text(encoding="utf-8")):
            return None
        return f"{file.relative_to(ROOT)} has no {rest[0]!r}"
    return "no such module under src/"


@pytest.mark.parametrize("guide", GUIDES, ids=[g.name for g in GUIDES])
def test_the_paths_a_guide_names_exist(guide: Path) -> None:
    paths = repo_paths(guide.read_text(encoding="utf-8"))
    assert any(p.startswith("src/mmserve/") and p.endswith(".py") for p in paths)
    missing = [p for p in paths if not (any(ROOT.glob(p)) if "*" in p else (ROOT / p).exists())]
    assert not missing, f"{guide.name} names paths that do not exist: {missing}"


@pytest.mark.parametrize("guide", GUIDES, ids=[g.name for g in GUIDES])
def test_the_modules_a_guide_names_exist(guide: Path) -> None:
    named = set(_MODULE.findall(guide.read_text(encoding="utf-8")))
    problems = {
        f"{dotted}{':' + attribute if attribute else ''}": why
        for dotted, attribute in sorted(named)
        if (why := missing_module(dotted, attribute)) is not None
    }
    assert not problems, f"{guide.name} names modules that do not exist: {problems}"


def test_the_checks_catch_a_moved_module() -> None:
    text = "`src/mmserve/serving/ingress.py`, `src/mmserve/serve/ingress.py`, `tests/unit`"
    assert repo_paths(text) == [
        "src/mmserve/serve/ingress.py",
        "src/mmserve/serving/ingress.py",
        "tests/unit",
    ]
    assert not (ROOT / "src/mmserve/serving/ingress.py").exists()
    assert missing_module("mmserve.serve.ingress", None) is None
    assert missing_module("mmserve.serving.app", "app_builder") is None
    assert missing_module("mmserve.registry.register_step", None) is None
    assert missing_module("mmserve.server.app", None) == "no such module under src/"
    assert missing_module("mmserve.registry.no_such_name", None) == (
        "src/mmserve/registry.py has no 'no_such_name'"
    )
    assert missing_module("mmserve.registry.a.b", None) == "a.b is not one name of mmserve.registry"
