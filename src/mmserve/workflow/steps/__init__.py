"""Built-in workflow steps. Importing this package registers them."""

from mmserve.workflow.steps import classify, models

__all__ = ["classify", "models"]
