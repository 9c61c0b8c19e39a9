"""Built-in workflow steps. Importing this package registers them."""

from mmserve.workflow.steps import classify, images, index, models, retrieve, score

__all__ = ["classify", "images", "index", "models", "retrieve", "score"]
