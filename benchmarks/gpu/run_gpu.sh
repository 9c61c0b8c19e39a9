#!/usr/bin/env bash
# The benchmark suite on one CUDA GPU, in under 10 minutes: fp16, batches of 64, more load.
#
#   bash benchmarks/gpu/run_gpu.sh                       # from the repository root
#   PRESETS=blip,minilm bash benchmarks/gpu/run_gpu.sh   # MiniLM too (needs its weights package)
#   bash benchmarks/gpu/run_gpu.sh --systems bare,mmserve,ray   # any extra benchmarks.run flags
#
# Environment: PYTHON (default .venv/bin/python, else python3), OUT_DIR (default
# benchmarks/results), PRESETS (default blip,fake), CONCURRENCY (default 1,16,64),
# DURATION / WARMUP (seconds per point, default 6 / 2). The model replica of each Ray app gets
# the whole GPU and 4 CPUs; LitServe and the FastAPI peer run on the same GPU.
#
# Then the image path (benchmarks/image_path.py): JPEG photos (224x224 to 4000x3000) into
# `classify` with the full-size CLIP ViT-B/32 (random://clip-vit-b32: its architecture and
# processor, random weights) in fp16 on the GPU, before and after the ingress reduction, p50 by
# upload size and images/s of 4000x3000 photos at IMAGE_CONCURRENCY (default 32) requests at
# once: what the CPU side sustains in front of the GPU. IMAGE_RUNS (default 15) requests per
# size; IMAGE_PATH=0 skips it.
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
OUT_DIR=${OUT_DIR:-benchmarks/results}
export BENCH_READY_TIMEOUT_S=${BENCH_READY_TIMEOUT_S:-150}
export PYTHONUNBUFFERED=1

"$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU visible')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

"$PYTHON" -m benchmarks.run \
  --name suite-gpu --out "$OUT_DIR" \
  --presets "${PRESETS:-blip,fake}" \
  --device cuda --dtype float16 --max-batch 64 --wait-ms 5 --cpus 4 --gpus 1 \
  --concurrency "${CONCURRENCY:-1,16,64}" \
  --duration "${DURATION:-6}" --warmup "${WARMUP:-2}" \
  --note "One CUDA GPU; fp16; batches up to 64." \
  --image-path-runs 0 \
  "$@"

if [ "${IMAGE_PATH:-1}" != "0" ]; then
  # --max-batch gives both CLIP entries the same settings: one deployment holds the GPU.
  "$PYTHON" -m benchmarks.image_path \
    --name image_path-gpu --out "$OUT_DIR" \
    --source random://clip-vit-b32 --device cuda --dtype float16 --gpus 1 --max-batch 64 \
    --runs "${IMAGE_RUNS:-15}" \
    --throughput "${IMAGE_CONCURRENCY:-32}" --seconds "${DURATION:-6}"
fi
