"""The base class of Hugging Face backends: what their ``source`` means and how it is checked.

A Hugging Face source is a hub id, a local folder, ``tiny://<arch>``, ``random://<arch>`` or
``pkg://<package>/<folder>`` (see :mod:`mmserve.models.sources.resolve`). ``check_source`` answers
fast, without building or downloading anything: generated models are only checked to be
known, hub ids to be reachable or in the local cache.
"""

from __future__ import annotations

from mmserve.models.sources.resolve import ResolvedSource, check_source, resolve_source
from mmserve.models.spec import ModelSpec


def check_hf_source(spec: ModelSpec) -> None:
    """Raise ModelLoadError (with a hint) when ``spec.source`` cannot be loaded."""
    check_source(spec.source, revision=spec.revision)


class HuggingFaceBackend:
    """Mixin for backends loading through ``from_pretrained`` (clip, sentence, blip, vilt)."""

    @classmethod
    def check_source(cls, spec: ModelSpec) -> None:
        """Raise ModelLoadError (with a hint) when ``spec.source`` cannot be loaded."""
        check_hf_source(spec)

    @staticmethod
    def resolve(spec: ModelSpec) -> ResolvedSource:
        """The folder or hub id to load ``spec`` from (builds tiny/random models if needed)."""
        return resolve_source(spec.source, revision=spec.revision)


__all__ = ["HuggingFaceBackend", "check_hf_source"]
