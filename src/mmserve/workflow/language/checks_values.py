"""Checking one ``with:`` or ``outputs:`` value: its references and its type.

A value is a literal (validated with pydantic against the target field, so ``top_k: "five"``
is caught at that node), a single reference (its type must fit the field), a string with
references embedded (a ``str``), or a list/mapping mixing both (checked item by item).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic.errors import PydanticSchemaGenerationError
from pydantic.fields import FieldInfo

from mmserve.workflow.language.checks_structure import Parts
from mmserve.workflow.language.issues import IssueSink, pydantic_message, short, suggestion
from mmserve.workflow.language.references import (
    STAR,
    Reference,
    ReferenceSyntaxError,
    incomplete,
    parse_template,
    walk_strings,
)
from mmserve.workflow.language.typecheck import (
    NavigationError,
    describe,
    field_type,
    input_type,
    is_image,
    list_item_type,
    mapping_fields,
    mismatch,
    navigate,
    scalar_base,
)
from mmserve.workflow.language.yaml_source import YamlPath

_REFERENCE_HINT = (
    "write ${inputs.NAME} or ${STEP.FIELD}, e.g. ${caption.text}; `$${` is a literal `${`"
)


def name_of(path: YamlPath) -> str:
    return str(path[-1]) if path else "value"


def _mismatch_hint(ref: Reference, source: Any, target: Any) -> str:
    item = list_item_type(target)
    if item is not None and mismatch(source, item) is None:
        return f"it is a single item: wrap it in a list, `[{ref.text}]`"
    if scalar_base(target) is str and scalar_base(source) in (int, float, bool):
        return f'to pass it as text, embed it in a string, e.g. "k={ref.text}"'
    return (
        "reference a value of the expected type (`mmserve plugins STEP_NAME` prints a step's "
        "fields and types; docs/steps.md lists the built-in ones)"
    )


def has_references(value: Any) -> bool:
    """Whether any string inside ``value`` contains ``${`` (well-formed or not)."""
    return any("${" in text for _, text in walk_strings(value))


def _adapter(tp: Any) -> TypeAdapter[Any] | None:
    try:
        return TypeAdapter(tp)
    except PydanticSchemaGenerationError:
        return TypeAdapter(tp, config=ConfigDict(arbitrary_types_allowed=True))
    except Exception:  # an annotation pydantic cannot build: leave it to run time
        return None


class ValueChecker:
    """Checks values against target types; records which steps each step depends on."""

    def __init__(self, sink: IssueSink, parts: Parts, step_classes: dict[str, Any]) -> None:
        self.sink = sink
        self.parts = parts
        #: step id -> plugin class, or None where the plugin is unknown or broken
        self.step_classes = step_classes
        self.input_types = {
            name: (input_type(spec) if spec is not None else Any)
            for name, spec in parts.inputs.items()
        }
        self.dependencies: dict[str, set[str]] = {step: set() for step in parts.steps}
        #: the step whose values are being checked (None for outputs)
        self.current: str | None = None
        #: for_each item names in scope (inside the current step's `with`) -> item type
        self.items: dict[str, Any] = {}
        #: steps that run for_each: their result is a list of their Outputs
        self.foreach_steps: set[str] = {
            step_id
            for step_id, spec in parts.steps.items()
            if spec is not None and spec.for_each is not None
        }

    def value(
        self,
        value: Any,
        target: Any,
        path: YamlPath,
        owner: str,
        name: str,
        info: FieldInfo | None = None,
    ) -> None:
        """Check ``value`` (at ``path``) against ``target``; issues say "OWNER 'NAME' ..."."""
        label = f"{owner} {name!r}"
        if not has_references(value):
            self.literal(value, target, path, label, info)
        elif isinstance(value, str):
            self._string(value, target, path, label)
        elif isinstance(value, list):
            item = list_item_type(target)
            if item is None:
                self.sink.add(path, f"{label} expects {describe(target)}, got a list")
                item = Any
            for index, element in enumerate(value):
                self.value(element, item, (*path, index), owner, f"{name}[{index}]")
        elif isinstance(value, dict):
            self._mapping(value, target, path, owner, name)

    def _string(self, value: str, target: Any, path: YamlPath, label: str) -> None:
        source = self.string_type(value, path)
        if source is None or mismatch(source, target) is None:
            return
        single = parse_template(value).single
        if single is None:
            self.sink.add(
                path,
                f"{label} expects {describe(target)}, but text with embedded references "
                "is a string",
                f"write the reference alone (`{name_of(path)}: ${{...}}`) to pass a value "
                "of another type",
            )
            return
        self.sink.add(
            path,
            f"{label} expects {describe(target)}, but {single.text} is {describe(source)}",
            _mismatch_hint(single, source, target),
            needle=single.text,
        )

    def _mapping(
        self, value: dict[str, Any], target: Any, path: YamlPath, owner: str, name: str
    ) -> None:
        fields = mapping_fields(target)
        if fields is None:
            self.sink.add(path, f"{owner} {name!r} expects {describe(target)}, got a mapping")
            fields = {"*": Any}
        for key, element in value.items():
            tp = fields.get(key, fields.get("*"))
            if tp is None:
                hint = suggestion(key, fields, noun="fields")
                message = f"{owner} {name!r}: unknown field {key!r}"
                self.sink.add((*path, key), message, hint, key=True)
                tp = Any
            self.value(element, tp, (*path, key), owner, f"{name}.{key}")

    def string_type(self, value: str, path: YamlPath) -> Any | None:
        """The type of a string value: the referenced type, ``str``, or None after an issue."""
        try:
            template = parse_template(value)
        except ReferenceSyntaxError as exc:
            self.sink.add(path, str(exc), _REFERENCE_HINT, needle=exc.text)
            return None
        types = [self.reference_type(ref, path) for ref in template.references]
        if template.single is not None:
            return types[0]
        for ref, tp in zip(template.references, types, strict=True):
            if tp is not None and is_image(tp):
                self.sink.add(
                    path,
                    f"{ref.text} is an image and cannot be embedded in text",
                    "pass the image on its own: `image: " + ref.text + "`",
                    needle=ref.text,
                )
        return str

    def literal(
        self, value: Any, target: Any, path: YamlPath, label: str, info: FieldInfo | None
    ) -> None:
        """Validate a reference-free value with pydantic, as the engine will at run time."""
        if isinstance(value, str):
            value = "".join(str(p) for p in parse_template(value).parts)  # `$${` unescaped
        if isinstance(value, bool) and scalar_base(target) in (int, float):
            self.sink.add(path, f"{label} expects {describe(target)}, got the boolean {value}")
            return
        adapter = _adapter(Annotated[info.annotation, info] if info is not None else target)
        if adapter is None:
            return
        try:
            adapter.validate_python(value)
        except ValidationError as exc:
            hint = "pass images as workflow inputs: `${inputs.image}`" if is_image(target) else None
            for error in exc.errors():
                where = [p for p in error["loc"] if isinstance(p, str | int)]
                message = pydantic_message(error["msg"])
                self.sink.add(
                    (*path, *where), f"{label}: {message} (got {short(error['input'])})", hint
                )

    def reference_type(self, ref: Reference, path: YamlPath) -> Any | None:
        """The type ``ref`` yields; None (after an issue) when it points at nothing."""
        if ref.root in self.items:
            return self._navigate(ref, self.items[ref.root], path, start=0)
        if not ref.path:
            self.sink.add(path, str(incomplete(ref)), _REFERENCE_HINT, needle=ref.text)
            return None
        first = ref.path[0]
        if ref.is_input:
            if not isinstance(first, str) or first not in self.parts.inputs:
                hint = suggestion(str(first), self.parts.inputs, noun="inputs")
                self.sink.add(
                    path, f"{ref.text} refers to an unknown input {first!r}", hint, needle=ref.text
                )
                return None
            return self._navigate(ref, self.input_types[first], path)
        if ref.root not in self.parts.steps:
            hint = suggestion(ref.root, self.parts.steps, noun="steps")
            if ref.root in self.parts.inputs:
                hint = f"to use the workflow input, write ${{inputs.{ref.root}}}"
            self.sink.add(
                path, f"{ref.text} refers to an unknown step {ref.root!r}", hint, needle=ref.text
            )
            return None
        if self.current is not None:
            self.dependencies[self.current].add(ref.root)
        cls = self.step_classes.get(ref.root)
        if cls is None:
            return Any  # the broken step is reported where it is declared
        if ref.root in self.foreach_steps:
            if not (first == STAR or isinstance(first, int)):
                rest = ref.describe()[len("${" + ref.root) :]
                self.sink.add(
                    path,
                    f"{ref.text}: step {ref.root!r} runs for_each, so its result is a list "
                    "(one entry per item)",
                    f"write ${{{ref.root}[*]{rest} for the list of every item's value, or "
                    f"${{{ref.root}[0]{rest} for one item",
                    needle=ref.text,
                )
                return None
            return self._navigate(ref, list[cls.Outputs], path, start=0)  # type: ignore[name-defined]
        outputs = cls.Outputs.model_fields
        if not isinstance(first, str) or first not in outputs:
            spec = self.parts.steps[ref.root]
            uses = spec.uses if spec is not None else "?"
            self.sink.add(
                path,
                f"{ref.text}: step {ref.root!r} ({uses}) has no output {first!r}",
                suggestion(str(first), outputs, noun=f"outputs of {uses}"),
                needle=ref.text,
            )
            return None
        return self._navigate(ref, field_type(outputs[first]), path)

    def _navigate(self, ref: Reference, base: Any, path: YamlPath, *, start: int = 1) -> Any | None:
        try:
            return navigate(base, ref.path[start:], offset=start)
        except NavigationError as exc:
            hint = (
                suggestion(str(ref.path[exc.index]), exc.known, noun="fields")
                if exc.known
                else None
            )
            self.sink.add(
                path,
                f"{ref.text}: {ref.describe(upto=exc.index)} {exc.message}",
                hint,
                needle=ref.text,
            )
            return None


__all__ = ["ValueChecker", "has_references"]
