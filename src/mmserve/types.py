"""The public types of the values that flow between workflow steps.

A step plugin declares these in its ``Inputs`` to take what a built-in step gives, e.g. a
field ``matches: list[RetrievedMatch]`` fed by ``${retrieve.matches}``; the workflow checker
then knows the shapes match before anything runs. Plain ``dict[str, Any]`` (or a model of
your own with the same fields) is accepted too: such a value reaches the step as a dict (or
your model). ``docs/steps.md`` lists every field of every type.

* :class:`RetrievedMatch` / :class:`MatchPayload` -- one search match (``retrieve``'s
  ``matches``; the same shape over HTTP, from the client and ``mmserve index search --json``);
* :class:`Embedding` -- a vector and its :class:`EmbeddingSpace` (``embed_image``/``embed_text``);
* :class:`LabelScore` -- one label of ``classify``'s ``scores``;
* :class:`ImageOutput` -- what ``generate_image``/``edit_image`` give;
* :class:`Answer` -- a VQA model's answer (the ``vqa`` role's result);
* :data:`ImageValue` -- an image field (a PIL image in Python, base64 PNG in JSON);
* :class:`StepContext` -- the ``ctx`` handed to ``Step.run``.
"""

from __future__ import annotations

from mmserve.media import ImageValue
from mmserve.models.spec import Answer, EmbeddingSpace
from mmserve.workflow.run.context import StepContext
from mmserve.workflow.steps.classify import LabelScore
from mmserve.workflow.steps.images import ImageOutput
from mmserve.workflow.steps.models import Embedding
from mmserve.workflow.steps.retrieve import MatchPayload, RetrievedMatch
from mmserve.workflow.steps.step import Step, StepInputs, StepOutputs

__all__ = [
    "Answer",
    "Embedding",
    "EmbeddingSpace",
    "ImageOutput",
    "ImageValue",
    "LabelScore",
    "MatchPayload",
    "RetrievedMatch",
    "Step",
    "StepContext",
    "StepInputs",
    "StepOutputs",
]
