"""The embedded model's held-out score on every named task, stored for ``rlenv envs`` and benchmarks.

    python benchmarks/untrained_heldout.py            # rewrites rlenv/assets/data/untrained_heldout.json
    python benchmarks/untrained_heldout.py --only rlenv/ChatCalculator-v0   # (re)measures one task, keeps the rest

Scores use the fixed held-out protocol of :mod:`agents.training.evaluation` (``EvalProtocol()``: 64 episodes
of the ``heldout`` split, fixed seeds), sampled and greedy. Run on CPU with one torch thread.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import rlenv  # noqa: E402
from agents.training.evaluation import EvalProtocol, evaluate_policy, has_splits, make_eval_envs  # noqa: E402
from agents.training.policy import LMPolicy  # noqa: E402
from rlenv.tasks import UNTRAINED_FILE  # noqa: E402

COMMAND = "python benchmarks/untrained_heldout.py"


def main(only: list[str]) -> None:
    torch.set_num_threads(1)
    policy = LMPolicy.from_pretrained(rlenv.DEFAULT_MODEL, device="cpu")
    kept = json.loads(UNTRAINED_FILE.read_text()) if only and UNTRAINED_FILE.exists() else {}
    scores = dict(kept.get("scores", {}))
    for info in rlenv.envs():
        if not has_splits(info.id) or (only and info.id not in only):
            continue
        entry = {}
        for mode, greedy in (("sampled", False), ("greedy", True)):
            protocol = EvalProtocol(greedy=greedy)
            envs = make_eval_envs(info.id, rlenv.DEFAULT_MODEL, protocol)
            try:
                summary = evaluate_policy(policy, envs, protocol)
            finally:
                envs.close()
            entry[mode] = {k: round(summary[k], 4) for k in ("reward_mean", "reward_se", "length_mean", "eos_rate")}
        scores[info.id] = entry
    written = dict(kept.get("written_per_task", {}))
    written.update({env_id: time.strftime("%Y-%m-%d") for env_id in (only or scores)})
    record = {"command": COMMAND, "model": "rlenv.DEFAULT_MODEL", "protocol": asdict(EvalProtocol()),
              "torch": torch.__version__, "written": time.strftime("%Y-%m-%d") if not only else kept.get("written"),
              "written_per_task": written, "scores": dict(sorted(scores.items()))}
    UNTRAINED_FILE.write_text(json.dumps(record, indent=2) + "\n")
    for env_id, entry in scores.items():
        print(f"{env_id:28s} sampled {entry['sampled']['reward_mean']:+.3f}  greedy {entry['greedy']['reward_mean']:+.3f}")


if __name__ == "__main__":
    main(sys.argv[sys.argv.index("--only") + 1:] if "--only" in sys.argv else [])
