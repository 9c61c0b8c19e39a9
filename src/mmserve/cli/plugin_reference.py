"""What one plugin takes and gives, from the registry: ``mmserve plugins NAME`` and docs/steps.md.

A step's reference is its ``Inputs`` (the ``with:`` keys) and ``Outputs`` (what
``${step.field}`` may name): each field's type as the workflow checker writes it, its
default and description, then the fields of the models those types name (``RetrievedMatch``
and the like, importable from :mod:`mmserve.types`). A role lists its methods with their item
and result types, a model backend the roles it serves, a store its description.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from mmserve import types
from mmserve.registry import PLUGIN_KINDS, PluginInfo, Registry, registry
from mmserve.workflow.language.typecheck import describe, field_type

#: Where the generated reference lives in the repository.
REFERENCE_PATH = "docs/steps.md"


def default_text(info: FieldInfo) -> str:
    """``required``, or the default as YAML would write it."""
    if info.is_required():
        return "required"
    value = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
    if value is PydanticUndefined or value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def field_rows(model: type[BaseModel]) -> list[tuple[str, str, str, str]]:
    """(name, type, default, description) for each field of ``model``."""
    return [
        (name, describe(field_type(info)), default_text(info), info.description or "")
        for name, info in model.model_fields.items()
    ]


def nested_models(models: list[type[BaseModel]]) -> list[type[BaseModel]]:
    """The models the fields of ``models`` name (at any depth), each once, in order met."""
    found: list[type[BaseModel]] = []

    def visit(tp: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp not in found and tp not in models:
                found.append(tp)
                for info in tp.model_fields.values():
                    visit(info.annotation)
            return
        for arg in getattr(tp, "__args__", ()):
            visit(arg)

    for model in models:
        for info in model.model_fields.values():
            visit(info.annotation)
    return found


def _model_title(model: type[BaseModel]) -> str:
    public = getattr(types, model.__name__, None) is model
    return f"{model.__name__} (mmserve.types)" if public else model.__name__


def _doc(target: Any) -> str:
    """The class's own docstring (not one it inherits from pydantic)."""
    own = vars(target).get("__doc__") if isinstance(target, type) else None
    return inspect.cleandoc(own) if own else ""


def _models_of_role(target: Any) -> list[type[BaseModel]]:
    types = [t for m in target.methods.values() for t in (m.item, m.result)]
    return [t for t in types if isinstance(t, type) and issubclass(t, BaseModel)]


def text_lines(info: PluginInfo, target: Any) -> Iterator[str]:
    """The plain-text reference of one plugin, line by line (for a terminal)."""
    yield f"{info.kind} {info.name}  ({info.origin})"
    if info.description:
        yield f"  {info.description}"
    if info.kind == "step":
        for title, model in (("inputs (with:)", target.Inputs), ("outputs", target.Outputs)):
            yield f"{title}:"
            yield from _text_fields(model)
        for model in nested_models([target.Inputs, target.Outputs]):
            yield f"{_model_title(model)}:"
            yield from _text_fields(model)
        yield f"use: `uses: {info.name}`; reference an output as ${{STEP_ID.FIELD}}"
    elif info.kind == "role":
        yield "methods:"
        for name, method in target.methods.items():
            summary = method.describe()
            yield f"  {name}: {summary['item']} -> {summary['result']}  {method.description}"
        for model in _models_of_role(target):
            yield f"{_model_title(model)}:"
            yield from _text_fields(model)
    else:
        roles = info.meta.get("roles") or sorted(getattr(target, "roles", ()))
        if roles:
            yield f"roles: {', '.join(roles)}"
        rest = _doc(target).split("\n\n", 1)
        if len(rest) == 2:
            yield from (f"  {line}" for line in rest[1].splitlines())


def _text_fields(model: type[BaseModel]) -> Iterator[str]:
    rows = field_rows(model)
    if not rows:
        yield "  (none)"
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(3)]
    for name, tp, default, description in rows:
        text = f"  {name:<{widths[0]}}  {tp:<{widths[1]}}  {default:<{widths[2]}}"
        yield f"{text}  {description}".rstrip()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or " "


def _table(model: type[BaseModel]) -> list[str]:
    rows = field_rows(model)
    if not rows:
        return ["(none)", ""]
    lines = ["| field | type | default | description |", "|---|---|---|---|"]
    for name, tp, default, description in rows:
        lines.append(f"| `{name}` | `{_cell(tp)}` | {_cell(default)} | {_cell(description)} |")
    return [*lines, ""]


def _roles_markdown(plugins: Registry) -> list[str]:
    lines = ["## Roles", ""]
    for info in plugins.plugins("role"):
        if info.origin != "builtin":
            continue
        target = plugins.get("role", info.name)
        lines += [f"### `{info.name}`", "", target.description, ""]
        lines += ["| method | item | result | description |", "|---|---|---|---|"]
        for name, method in target.methods.items():
            summary = method.describe()
            lines.append(
                f"| `{name}` | `{summary['item']}` | `{summary['result']}` "
                f"| {_cell(method.description)} |"
            )
        lines.append("")
        for model in _models_of_role(target):
            lines += [f"`{model.__name__}`:", ""]
            lines += _table(model)
    return lines


def markdown(plugins: Registry) -> str:
    """docs/steps.md: every built-in plugin, generated from the registry."""
    lines = [
        "# Steps, roles, models and stores: the reference",
        "",
        "Generated from the plugin registry by `python -m mmserve.cli.plugin_reference`; a test",
        "checks it is current. `mmserve plugins NAME` prints the same for any installed",
        "plugin, yours included. Types are written as the workflow checker writes them;",
        "`image` is an image (a PIL image in Python, base64 PNG in JSON). The models named",
        "here (`RetrievedMatch`, ...) are importable from `mmserve.types` for your own steps.",
        "",
        "## Steps",
        "",
    ]
    steps = [i for i in plugins.plugins("step") if i.origin == "builtin"]
    shared: list[type[BaseModel]] = []
    for info in steps:
        target = plugins.get("step", info.name)
        lines += [f"### `{info.name}`", "", _doc(target), "", "Inputs (`with:`):", ""]
        lines += _table(target.Inputs)
        lines += ["Outputs (`${STEP_ID.FIELD}`):", ""]
        lines += _table(target.Outputs)
        for model in nested_models([target.Inputs, target.Outputs]):
            if model not in shared:
                shared.append(model)
    lines += ["## Types between steps", ""]
    for model in shared:
        title = _model_title(model).replace(" (mmserve.types)", "` (`mmserve.types`)")
        lines += [f"### `{title}" + ("" if title.endswith(")") else "`"), "", _doc(model), ""]
        lines += _table(model)
    lines += _roles_markdown(plugins)
    lines += ["## Model backends", "", "| name | roles | description |", "|---|---|---|"]
    for info in plugins.plugins("model"):
        if info.origin == "builtin":
            roles = ", ".join(info.meta.get("roles") or [])
            lines.append(f"| `{info.name}` | {roles} | {_cell(info.description)} |")
    lines += ["", "## Vector stores", "", "| name | description |", "|---|---|"]
    for info in plugins.plugins("store"):
        if info.origin == "builtin":
            lines.append(f"| `{info.name}` | {_cell(info.description)} |")
    return "\n".join(line.rstrip() for line in lines).rstrip() + "\n"


def kinds_named(plugins: Registry, name: str) -> list[PluginInfo]:
    """Every plugin called ``name`` (a name may be a step and a role, say)."""
    return [i for kind in PLUGIN_KINDS for i in plugins.plugins(kind) if i.name == name]


def main() -> None:
    """Write docs/steps.md (run from the repository root)."""
    Path(REFERENCE_PATH).write_text(markdown(registry), encoding="utf-8")


if __name__ == "__main__":
    main()


__all__ = [
    "REFERENCE_PATH",
    "default_text",
    "field_rows",
    "kinds_named",
    "markdown",
    "nested_models",
    "text_lines",
]
