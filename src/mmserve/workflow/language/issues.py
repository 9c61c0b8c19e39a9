"""Collecting :class:`~mmserve.errors.WorkflowIssue` s with positions and "did you mean" hints."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from mmserve.errors import WorkflowIssue
from mmserve.workflow.language.yaml_source import YamlDocument, YamlPath

#: ImageValue's validator says "input 'image': ..."; the issue already names the field.
_INPUT_PREFIX = re.compile(r"^input '[^']*': ")


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like ``word``, if any is close enough to be a likely typo."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def suggestion(word: str, candidates: Iterable[str], *, noun: str) -> str:
    """``did you mean 'x'? known NOUNs: a, b, c`` (the listing alone when nothing is close)."""
    names = sorted(candidates)
    listing = f"known {noun}: {', '.join(names)}" if names else f"there are no {noun}"
    guess = closest(word, names)
    return f"did you mean {guess!r}? {listing}" if guess else listing


def pydantic_message(message: str) -> str:
    """A pydantic error message without the noise that repeats the field's own name."""
    return _INPUT_PREFIX.sub("", message.removeprefix("Value error, "))


def short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class IssueSink:
    """The issues of one document, each placed at a YAML path."""

    def __init__(self, doc: YamlDocument) -> None:
        self.doc = doc
        self.issues: list[WorkflowIssue] = list(doc.issues)

    def add(
        self,
        path: YamlPath,
        message: str,
        hint: str | None = None,
        *,
        key: bool = False,
        needle: str | None = None,
    ) -> None:
        """Record an issue at ``path`` (its key when ``key``; at ``needle`` inside a string)."""
        if needle is not None:
            location = self.doc.text_location(path, needle)
        else:
            location = self.doc.location(path, key=key)
        self.issues.append(WorkflowIssue(location, message, hint))

    def pydantic(
        self, base: YamlPath, exc: ValidationError, *, what: str, known_keys: list[str]
    ) -> None:
        """One issue per pydantic error, placed at the offending key or value."""
        for error in exc.errors():
            loc = tuple(p for p in error["loc"] if isinstance(p, str | int))
            path = (*base, *loc)
            where = ".".join(str(p) for p in loc)
            kind = error["type"]
            if kind == "extra_forbidden":
                name = str(loc[-1])
                self.add(
                    path,
                    f"unknown key {name!r} in {what}",
                    suggestion(name, known_keys, noun="keys"),
                    key=True,
                )
            elif kind == "missing":
                self.add(
                    path[:-1],
                    f"{what} is missing the required key {str(loc[-1])!r}",
                    f"add `{loc[-1]}:` here",
                )
            elif kind == "literal_error":
                expected = str(error.get("ctx", {}).get("expected", ""))
                options = [o.strip().strip("'") for o in expected.replace(" or ", ",").split(",")]
                got = str(error["input"])
                guess = closest(got, options)
                hint = f"did you mean {guess!r}?" if guess else f"use one of: {', '.join(options)}"
                self.add(path, f"{what}: {where} {short(error['input'])} is not valid", hint)
            else:
                self.add(path, f"{what}: {where}: {error['msg']} (got {short(error['input'])})")


__all__ = ["IssueSink", "closest", "pydantic_message", "short", "suggestion"]
