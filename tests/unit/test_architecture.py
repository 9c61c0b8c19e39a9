"""The shape of the package (ARCHITECTURE.md): imports run one way, folders stay small.

* no import circle between mmserve's modules, imports inside functions counted (grimp sees
  them; so does the layers contract);
* no folder under src/mmserve holds more than 16 modules, the package root at most 10;
* an import inside a function is there only to defer something heavy or optional (Ray,
  torch, transformers, diffusers, the MCP SDK, ...), and says so on its line;
* ``lint-imports`` (the contracts in pyproject.toml) passes.
"""

from __future__ import annotations

import ast
import io
import subprocess
import sys
import tokenize
from collections.abc import Iterator
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "mmserve"
MAX_MODULES_PER_FOLDER = 16
MAX_MODULES_AT_ROOT = 10


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    modules = sorted(m for m in graph.modules if m == "mmserve" or m.startswith("mmserve."))
    inside = set(modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & inside) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in modules:
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(edges[target])))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _one_circle(graph: grimp.ImportGraph, component: list[str]) -> str:
    """One circle through ``component``'s first module, as ``a -> b -> ... -> a``."""
    first = component[0]
    members = set(component)
    following = sorted(graph.find_modules_directly_imported_by(first) & members)[0]
    chain = graph.find_shortest_chain(importer=following, imported=first) or (following, first)
    return " -> ".join((first, *chain))


def test_no_import_circles_between_mmserve_modules() -> None:
    graph = grimp.build_graph("mmserve", cache_dir=None)  # imports inside functions count
    circles = [_one_circle(graph, component) for component in _cycles(graph)]
    assert not circles, "import circles (break each at the right depth):\n" + "\n".join(circles)


def test_the_circle_finder_finds_a_circle() -> None:
    graph = grimp.ImportGraph()
    for module in ("mmserve", "mmserve.a", "mmserve.b", "mmserve.c"):
        graph.add_module(module)
    graph.add_import(importer="mmserve.a", imported="mmserve.b")
    graph.add_import(importer="mmserve.b", imported="mmserve.c")
    graph.add_import(importer="mmserve.c", imported="mmserve.a")
    graph.add_import(importer="mmserve", imported="mmserve.a")
    assert _cycles(graph) == [["mmserve.a", "mmserve.b", "mmserve.c"]]
    assert _one_circle(graph, ["mmserve.a", "mmserve.b", "mmserve.c"]) == (
        "mmserve.a -> mmserve.b -> mmserve.c -> mmserve.a"
    )


def test_no_folder_holds_too_many_modules() -> None:
    crowded = []
    for folder in sorted({PACKAGE, *(p.parent for p in PACKAGE.rglob("*.py"))}):
        count = len(list(folder.glob("*.py")))
        limit = MAX_MODULES_AT_ROOT if folder == PACKAGE else MAX_MODULES_PER_FOLDER
        if count > limit:
            crowded.append(f"{folder.relative_to(ROOT)}: {count} modules (at most {limit})")
    assert not crowded, "split these folders by what their modules do:\n" + "\n".join(crowded)


def _imports_in_functions(source: str) -> Iterator[ast.Import | ast.ImportFrom]:
    seen: set[int] = set()
    for function in ast.walk(ast.parse(source)):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom) and node.lineno not in seen:
                    seen.add(node.lineno)
                    yield node


def _comment_lines(source: str) -> set[int]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {token.start[0] for token in tokens if token.type == tokenize.COMMENT}


def test_every_import_inside_a_function_says_why() -> None:
    """Hoist an import to the module's top unless it defers something heavy; then say what
    on its (first) line, e.g. ``import ray  # deferred: pulls in Ray``."""
    silent = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        commented = _comment_lines(source)
        lines = source.splitlines()
        for node in _imports_in_functions(source):
            if node.lineno not in commented:
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                silent.append(f"{where}: {lines[node.lineno - 1].strip()}")
    assert not silent, "imports inside functions with no reason on their line:\n" + "\n".join(
        silent
    )


def test_the_import_contracts_are_kept() -> None:
    """The contracts of pyproject.toml ([tool.importlinter]): the layers, the client alone,
    no Ray in the workflow engine or the agent loop."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
