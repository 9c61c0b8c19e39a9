"""Peer: LitServe with its dynamic batching (``max_batch_size`` / ``batch_timeout``).

python -m benchmarks.peers.litserve_peer --preset minilm --port 8102 --max-batch 16
"""

import argparse
from typing import Any

import litserve as ls
import litserve.server

from benchmarks.peers.handmade import decode, load

# LitServe 0.2.19 turns on its MCP endpoint whenever a package named ``mcp`` is installed, but
# its MCP module only imports the SDK when ``fastmcp`` is, and then only mcp 1.x's API: with
# mmserve's mcp 2.x it fails to start (NameError: name 'MCPServer' is not defined). The
# benchmark does not use LitServe's MCP endpoint, so it is switched off here (this module is
# imported by every LitServe process, the workers included, since they unpickle BenchAPI).
litserve.server._MCP_AVAILABLE = False  # type: ignore[attr-defined]


class BenchAPI(ls.LitAPI):
    """The hand-written model behind LitServe's batching loop."""

    def __init__(self, preset_name: str, device: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._preset_name = preset_name
        self._device = device

    def setup(self, device: str) -> None:
        self._preset, self._predict = load(self._preset_name, self._device)

    # Unannotated on purpose: LitServe reads the annotation of ``request`` as the body type
    # (none: the raw Starlette request's JSON) and the return annotation as the response.
    def decode_request(self, request, **kwargs):  # type: ignore[no-untyped-def]
        return decode(self._preset, request)

    def batch(self, inputs: list[Any]) -> list[Any]:
        return list(inputs)

    def predict(self, x: Any, **kwargs: Any) -> Any:
        if self.max_batch_size > 1:
            return self._predict(x)
        return self._predict([x])[0]

    def unbatch(self, output: Any) -> list[Any]:
        return list(output)

    def encode_response(self, output, **kwargs):  # type: ignore[no-untyped-def]
        return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--wait-ms", type=float, default=0.0)
    args = parser.parse_args()
    api = BenchAPI(
        args.preset,
        args.device,
        max_batch_size=args.max_batch,
        batch_timeout=args.wait_ms / 1000.0,
    )
    accelerator = "cuda" if args.device in ("cuda", "auto") and _has_cuda() else "cpu"
    server = ls.LitServer(api, accelerator=accelerator, workers_per_device=1, timeout=300)
    server.run(host="127.0.0.1", port=args.port, generate_client_file=False, log_level="warning")


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    main()
