"""The ``keywords`` step: the most frequent content words of a text, in order of frequency."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mmserve.registry import register_step

_STOPWORDS = frozenset(
    """a an and are as at be by for from has have in is it its of on or that the this to
    was were with there their them they he she his her its into onto over under up down
    out off very some any our your you we i me my""".split()
)
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


@register_step("keywords")
class Keywords:
    """Keep the most frequent content words of a text (ties: first seen first)."""

    class Inputs(BaseModel):
        model_config = ConfigDict(extra="forbid")

        text: str
        top_k: int = Field(default=5, ge=1, le=100)
        min_length: int = Field(default=3, ge=1, le=50)

    class Outputs(BaseModel):
        keywords: list[str]

    async def run(self, inputs: Inputs, ctx: Any) -> Outputs:
        words = [
            word
            for word in (w.lower() for w in _WORD.findall(inputs.text))
            if len(word) >= inputs.min_length and word not in _STOPWORDS
        ]
        ranked = sorted(Counter(words).items(), key=lambda item: -item[1])  # stable sort
        return self.Outputs(keywords=[word for word, _ in ranked[: inputs.top_k]])
