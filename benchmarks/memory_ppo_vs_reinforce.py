"""Peak memory of PPO vs REINFORCE on the same model and settings, each in a fresh subprocess.

PPO adds a value head on the policy's own trunk, ONE frozen reference, and per-token buffers; the
target (DESIGN.md) is PPO's peak <= 2x REINFORCE's. Both runs use the same kl_coef, so REINFORCE
holds a frozen reference too (its KL penalty) — pass ``--reinforce-kl-coef 0`` to compare against a
REINFORCE that keeps no reference at all (the harshest comparison).

On CPU the measure is the process's peak resident set size (``resource.getrusage().ru_maxrss``; the
Python heap tracer cannot see torch's allocations), reported in total and above a third subprocess
that only imports everything and loads the model once (the common floor). On CUDA it is
``torch.cuda.max_memory_allocated``.

    python benchmarks/memory_ppo_vs_reinforce.py                      # rlenv.DEFAULT_MODEL if built
    python benchmarks/memory_ppo_vs_reinforce.py --model PATH --steps 3 --batch-size 32 --device cuda
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

PROMPTS = ["the movie was", "the hotel room", "this book is", "my flight was", "the coffee here", "our waiter"]


def child(args: argparse.Namespace) -> None:
    """Run one configuration and print its peak memory as JSON on the last line."""
    import torch

    from agents.training.config import TrainConfig
    from agents.training.policy import LMPolicy
    from agents.training.trainer import train

    torch.set_num_threads(args.threads)
    algo = args.child
    if algo == "floor":
        LMPolicy.from_pretrained(args.model, device=args.device)
    else:
        kl = args.reinforce_kl_coef if algo == "reinforce" else args.kl_coef
        train(TrainConfig(
            algo=algo, env="rlenv/TextGen-v0", model=args.model, steps=args.steps, batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens, kl_coef=kl, lr=1e-5, device=args.device, checkpoint_every=0,
            out=str(Path(args.out) / algo), minibatch_size=args.minibatch_size,
            env_args=(f"prompts={json.dumps(PROMPTS)}", "reward_model=vader", "max_prompt_tokens=16"),
        ))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    cuda = torch.cuda.max_memory_allocated() if torch.cuda.is_available() and args.device != "cpu" else None
    print(json.dumps({"algo": algo, "rss_mib": peak_kib / 1024, "cuda_mib": None if cuda is None else cuda / 2**20}))


def measure(algo: str, args: argparse.Namespace, out: str) -> dict:
    cmd = [sys.executable, __file__, "--child", algo, "--model", args.model, "--steps", str(args.steps),
           "--batch-size", str(args.batch_size), "--max-new-tokens", str(args.max_new_tokens),
           "--kl-coef", str(args.kl_coef), "--reinforce-kl-coef", str(args.reinforce_kl_coef),
           "--device", args.device, "--threads", str(args.threads), "--out", out]
    if args.minibatch_size:
        cmd += ["--minibatch-size", str(args.minibatch_size)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{algo} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--minibatch-size", type=int, default=None, help="default: the whole batch on both sides")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--kl-coef", type=float, default=0.05)
    parser.add_argument("--reinforce-kl-coef", type=float, default=None, help="default: --kl-coef")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reinforce_kl_coef is None:
        args.reinforce_kl_coef = args.kl_coef
    if args.model is None:
        import rlenv

        args.model = rlenv.DEFAULT_MODEL
    if not (Path(args.model) / "config.json").exists():
        raise SystemExit(f"no model at {args.model}; pass --model PATH (a save_pretrained directory)")
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory() as out:
        results = {algo: measure(algo, args, out) for algo in ("floor", "reinforce", "ppo")}
    floor, rf, ppo = results["floor"], results["reinforce"], results["ppo"]
    print(f"model {args.model}; batch {args.batch_size} x {args.max_new_tokens} new tokens, {args.steps} updates, "
          f"kl_coef ppo {args.kl_coef} / reinforce {args.reinforce_kl_coef}, device {args.device}")
    print(f"peak RSS MiB: floor (imports + one model) {floor['rss_mib']:.0f}, reinforce {rf['rss_mib']:.0f}, "
          f"ppo {ppo['rss_mib']:.0f}")
    print(f"PPO / REINFORCE peak RSS = {ppo['rss_mib'] / rf['rss_mib']:.2f} (target <= 2); above the floor: "
          f"{(ppo['rss_mib'] - floor['rss_mib']) / max(rf['rss_mib'] - floor['rss_mib'], 1e-9):.2f}")
    if ppo["cuda_mib"] is not None:
        print(f"PPO / REINFORCE peak CUDA memory = {ppo['cuda_mib'] / rf['cuda_mib']:.2f} "
              f"({ppo['cuda_mib']:.0f} vs {rf['cuda_mib']:.0f} MiB)")


if __name__ == "__main__":
    main()
