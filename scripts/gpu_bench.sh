#!/usr/bin/env bash
# burn's wgpu backend against PyTorch CUDA on the same GPU, network (ResNet-20,
# width 1, 3x32x32) and batch sizes, in one command:
#
#   PYTHON=python3 bash scripts/gpu_bench.sh [BATCHES]
#
# Needs cargo, a Vulkan driver for wgpu (NVIDIA's, or Mesa's on other cards;
# see ../shared/gpu-check/README.md for a machine without the loader) and a
# Python whose torch sees the GPU. Prints each batch size's throughput and
# the ratio burn / PyTorch; a first run builds the wgpu bench (minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
batches=${1:-30}
"$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "torch sees no CUDA device")'
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
for batch in 64 128 512; do
  cargo bench --features wgpu --bench train -- \
    --device wgpu --replicas 1 --batch "$batch" --batches "$batches" --pytorch "$python"
done
