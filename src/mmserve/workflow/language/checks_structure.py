"""First pass over a workflow document: its shape (keys, kinds of values, names).

Each input and step is validated on its own, so that one broken step does not hide the
problems of the others; parts that fail here are kept as ``None`` and later checks treat
references to them as untyped instead of piling up follow-on errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from mmserve.errors import InputError
from mmserve.workflow.language.input_values import validate_value
from mmserve.workflow.language.issues import IssueSink, short, suggestion
from mmserve.workflow.language.references import INPUTS_ROOT
from mmserve.workflow.language.spec import KNOWN_KEYS, InputSpec, StepSpec
from mmserve.workflow.language.yaml_source import YamlPath

_WORKFLOW_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLACEHOLDER = re.compile(r"^input 'value(\[\d+\])*': ")


@dataclass
class Parts:
    """The workflow's parts that passed the shape checks (``None`` where one did not)."""

    name: str = ""
    description: str = ""
    inputs: dict[str, InputSpec | None] = field(default_factory=dict)
    steps: dict[str, StepSpec | None] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)


def _mapping(sink: IssueSink, root: dict[str, Any], key: str, *, required: bool) -> dict[str, Any]:
    value = root.get(key)
    if value is None:
        if required:
            sink.add((), f"the workflow is missing the required key {key!r}", f"add `{key}:`")
        return {}
    if not isinstance(value, dict):
        sink.add((key,), f"{key!r} must be a mapping of names to entries, got {short(value)}")
        return {}
    return value


def check_structure(sink: IssueSink) -> Parts | None:
    """The workflow's parts; issues go to ``sink``. None when the top level is unusable."""
    root = sink.doc.value
    if not isinstance(root, dict):
        sink.add(
            (),
            "the top level of a workflow file must be a mapping",
            "start with `name:`, then `inputs:`, `steps:` and `outputs:`",
        )
        return None
    for key in root:
        if key not in KNOWN_KEYS["workflow"]:
            hint = suggestion(key, KNOWN_KEYS["workflow"], noun="keys")
            sink.add((key,), f"unknown key {key!r} at the top level", hint, key=True)
    parts = Parts()
    parts.name = _name(sink, root)
    description = root.get("description", "")
    if not isinstance(description, str):
        sink.add(("description",), "'description' must be text")
    else:
        parts.description = description
    for name, raw in _mapping(sink, root, "inputs", required=False).items():
        parts.inputs[name] = _input(sink, ("inputs", name), name, raw)
    steps = _mapping(sink, root, "steps", required=True)
    if "steps" in root and not steps and isinstance(root.get("steps"), dict | None):
        sink.add(("steps",), "the workflow has no steps", "add at least one step under `steps:`")
    for step_id, raw in steps.items():
        parts.steps[step_id] = _step(sink, step_id, raw)
    parts.outputs = _mapping(sink, root, "outputs", required=False)
    return parts


def _name(sink: IssueSink, root: dict[str, Any]) -> str:
    name = root.get("name")
    if name is None:
        stem = sink.doc.file.rsplit("/", 1)[-1].split(".", 1)[0]
        sink.add((), "the workflow is missing the required key 'name'", f"add `name: {stem}`")
        return ""
    if not isinstance(name, str) or not _WORKFLOW_NAME.fullmatch(name):
        sink.add(
            ("name",),
            f"invalid workflow name {short(name)}",
            "use letters, digits, '_', '-' or '.', starting with a letter "
            "(the name appears in URLs and on the command line)",
        )
        return ""
    return name


def _input(sink: IssueSink, path: YamlPath, name: str, raw: Any) -> InputSpec | None:
    if not _IDENTIFIER.fullmatch(name):
        sink.add(path, f"invalid input name {name!r}", "use letters, digits and '_'", key=True)
    try:
        spec = InputSpec.model_validate(raw)
    except ValidationError as exc:
        sink.pydantic(path, exc, what=f"input {name!r}", known_keys=KNOWN_KEYS["input"])
        return None
    ok = _input_semantics(sink, path, name, spec)
    return spec if ok else None


def _input_semantics(sink: IssueSink, path: YamlPath, name: str, spec: InputSpec) -> bool:
    before = len(sink.issues)
    kind = spec.type
    if spec.items is not None and kind != "array":
        sink.add((*path, "items"), f"input {name!r}: 'items' applies only to type array")
    if spec.items is not None:
        _input_semantics(sink, (*path, "items"), f"{name}[]", spec.items)
    numeric = kind in ("integer", "number")
    for key in ("minimum", "maximum"):
        if getattr(spec, key) is not None and not numeric:
            sink.add((*path, key), f"input {name!r}: {key!r} applies only to integer and number")
    for key in ("min_length", "max_length"):
        if getattr(spec, key) is not None and kind not in ("string", "array"):
            sink.add((*path, key), f"input {name!r}: {key!r} applies only to string and array")
    if spec.minimum is not None and spec.maximum is not None and spec.minimum > spec.maximum:
        sink.add((*path, "minimum"), f"input {name!r}: minimum is greater than maximum")
    if spec.enum is not None:
        for index, option in enumerate(spec.enum):
            _check_value(
                sink,
                (*path, "enum", index),
                spec.model_copy(update={"enum": None}),
                option,
                f"input {name!r}: enum value",
            )
    if "default" in spec.model_fields_set and spec.default is not None:
        if kind == "image":
            sink.add(
                (*path, "default"),
                f"input {name!r}: an image input cannot have a default",
                "remove `default:`; callers send the image",
            )
        else:
            _check_value(sink, (*path, "default"), spec, spec.default, f"input {name!r}: default")
    return len(sink.issues) == before


def _check_value(sink: IssueSink, path: YamlPath, spec: InputSpec, value: Any, what: str) -> None:
    try:
        validate_value(spec, value, name="value")
    except InputError as exc:  # its message names the placeholder input: drop that part
        message = _PLACEHOLDER.sub("", exc.message)
        sink.add(path, f"{what} {short(value)} is invalid: {message}")


def _step(sink: IssueSink, step_id: str, raw: Any) -> StepSpec | None:
    path: YamlPath = ("steps", step_id)
    if not _IDENTIFIER.fullmatch(step_id) or step_id == INPUTS_ROOT:
        sink.add(
            path,
            f"invalid step id {step_id!r}",
            "use letters, digits and '_' (not 'inputs'): the id is used in ${id.field}",
            key=True,
        )
    try:
        return StepSpec.model_validate(raw)
    except ValidationError as exc:
        sink.pydantic(path, exc, what=f"step {step_id!r}", known_keys=KNOWN_KEYS["step"])
        errors = exc.errors()
    # Only misspelt keys: check the rest of the step too, so its other problems show now.
    if isinstance(raw, dict) and all(e["type"] == "extra_forbidden" for e in errors):
        known = {k: v for k, v in raw.items() if k in KNOWN_KEYS["step"]}
        try:
            return StepSpec.model_validate(known)
        except ValidationError:
            return None
    return None


__all__ = ["Parts", "check_structure"]
