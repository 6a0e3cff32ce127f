#!/usr/bin/env bash
# The GPU figures of issue 24 (item 6) in one run of under 10 minutes: GRPO vs TRL and the rollout vs
# generate, at 28M and ~117M parameters (benchmarks/model_sizes.py), on the first CUDA device.
# rlenv runs with its defaults (bf16 autocast on a bf16 GPU) and, as "plain", every saver off in fp32;
# TRL runs in fp32 and with bf16=True (its GPU default). Every figure is printed with the GPU's name
# and the load average. Run from the repository root:
#
#     bash benchmarks/gpu_check.sh 2>&1 | tee gpu_check.log
#
# Not yet run: no GPU was lent to the session that wrote it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA device visible: this script is for a GPU machine"
print("GPU:", torch.cuda.get_device_name(0), "| bf16:", torch.cuda.is_bf16_supported(), "| torch", torch.__version__)
PY
nvidia-smi --query-gpu=name,memory.total,utilization.gpu --format=csv || true
uptime
for size in 28m 120m; do
  timeout 200 python benchmarks/grpo_vs_trl.py --device cuda --size "$size" --steps 4 --repeats 1 \
    --trl fp32,bf16 --variants plain,default --threads 0
  timeout 80 python benchmarks/rollout_vs_generate.py --device cuda --size "$size" --repeats 3 --skip-scaling --threads 0
  timeout 80 python benchmarks/rollout_vs_generate.py --device cuda --size "$size" --repeats 3 --skip-scaling --threads 0 --bf16
done
uptime
