"""Built-in workflow steps. Importing this package registers them."""

from mmserve.workflow.steps import classify, index, models, retrieve

__all__ = ["classify", "index", "models", "retrieve"]
