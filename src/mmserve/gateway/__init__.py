"""How the workflow engine reaches models: one interface, two implementations.

:class:`~mmserve.gateway.contract.ModelGateway` is the interface; ``gateway.local`` runs models in
this process (local mode, tests) and ``serving.handles`` calls Ray Serve deployments.
"""

from mmserve.gateway.contract import Batched, Called, ModelGateway

__all__ = ["Batched", "Called", "ModelGateway"]
