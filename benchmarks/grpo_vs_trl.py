"""Our GRPO vs TRL's ``GRPOTrainer``: wall time of the same training run, in the same process.

Both sides get the same model (loaded from the same directory), the same prompts, the same reward
function (VADER compound of the completion, via ``reward_models``), group size, completions per
step, completion length, learning rate, KL coefficient ``beta`` (k3 estimator in the loss on both
sides, so both load and score a frozen reference), one optimizer step and one iteration per batch,
and the same number of steps. TRL runs with no gradient checkpointing, ``disable_dropout=True``
(rlenv samples and scores with dropout off), ``use_cpu``, no reporting, logging, saving or progress
bar, in two precisions (``--trl fp32,bf16``): fp32, the setting DESIGN.md and issue 14 name as TRL's
best on a CPU, and ``bf16=True`` (autocast, fp32 master weights), which on this CPU (avx512_bf16) is
twice as fast as TRL's fp32 and so is TRL's real best here; every rlenv side is reported against
both. All sides alternate within every repeat (the order flips each repeat); the median counts.
Timed: the training loop — ``trainer.train()`` vs ``Trainer.run()`` up to the end of its last
update (the run's own ``elapsed_s``), leaving out rlenv's final checkpoint and curve plot, since TRL
saves and plots nothing here; setup is reported apart.

Two sizes (benchmarks/model_sizes.py): the embedded model (3.4M) and a random-init GPT-2 of
8 layers x 512 (27.4M params) over the embedded tokenizer. ``--variants`` names the rlenv sides,
each a set of TrainConfig options, so every change is measured against TRL in the same run:

    plain      every exact saver off (--rollout-cache dynamic --no-shared-prefill --no-shared-scoring):
               the default before issue 24 ("base" in the table below)
    default    the defaults: preallocated cache, shared prefill, shared scoring, fp32 everywhere
    noscoring  the defaults with --no-shared-scoring (the update's padded single forward)
    bf16roll   defaults + --rollout-precision bf16 (the update, and what it learns from, in fp32)
    bf16ref    defaults + --reference-precision bf16 (only the frozen reference's forward; its logprobs fp32)
    fast       defaults + bf16roll + bf16ref: the policy still learns in fp32
    bf16       defaults + --precision bf16: mixed precision everywhere, like TRL's bf16=True

    python benchmarks/grpo_vs_trl.py --size 28m --steps 3 --repeats 2 --trl fp32,bf16 --variants plain,default,fast,bf16
    python benchmarks/grpo_vs_trl.py --size embedded --steps 10 --repeats 2 --trl fp32,bf16 --variants plain,default,fast,bf16

The table below was measured before issue 24 (its "base" is today's ``plain``, its "fast" had the
rollout savers but not shared scoring); docs/speed.md has the figures after it.

Results on this 2-core CPU (AMD EPYC, avx512_bf16), ``--threads 1``, 4 prompts x 8 completions,
32 tokens, beta 0.04, the two commands above (load average 1-2: another engineer's job on the other
core); ratio = rlenv's time / TRL's in the same run, "/ fp32 / bf16" against each TRL side:

    size      TRL fp32  TRL bf16  base                fast                bf16
    embedded  7.6 s     5.9 s     5.0 s  0.65 / 0.85  3.3 s 0.43 / 0.56   2.4 s 0.31 / 0.40
    28m       16.1 s    7.4 s     13.3 s 0.83 / 1.80  9.5 s 0.59 / 1.28   5.3 s 0.33 / 0.72

What it shows. With everything in fp32 both libraries do the same passes per update (a reference
forward, a policy forward and backward), and at 28M those dominate. rlenv's default is ahead
(0.83x at 28M) because it does the same arithmetic in fewer kernels: GPT-2's tanh-GELU is five
Python-level elementwise ops in transformers and one fused kernel in rlenv (``fuse_tanh_gelu``,
same function to 2e-7), and Adam is torch's fused kernel; before those two changes the default was
at parity (1.05x). The savers then do less or cheaper work where learning does not feel it — the
rollout (preallocated cache, one prefill per prompt group, bf16 sampling with each weight cast once
per rollout) and the reference (never differentiated; bf16 moves an episode's summed logprob by
~0.02-0.03 nats) — and take rlenv to 0.59x TRL fp32 at 28M and 0.43x on the embedded model while
the policy still learns in fp32. Like for like in mixed precision, rlenv's ``--precision bf16`` is
0.72x TRL's ``bf16=True`` at 28M and 0.40x on the embedded model. On this CPU TRL's bf16 is twice as
fast as its fp32, so DESIGN.md's "TRL's best CPU setting is fp32" does not hold here; both TRL sides
are reported so that no ratio depends on that choice.

Each change on its own, 28m, against TRL fp32 in the same run: base 1.05 before the fused GELU and
Adam -> 0.83 after; --reference-precision bf16 alone 0.88 (before the fusions); the rollout savers
plus bf16 sampling 0.91 -> 0.74 with the bf16 reference (before the fusions); ``--precision bf16``
0.43 -> 0.33 with the fusions (/ TRL bf16: 0.86 -> 0.72).

At the embedded size completions end at EOS, so variants whose sampled tokens differ (bf16 sampling)
also differ in completion length and hence in work; at 28M (random weights) every completion runs
the full 32 tokens.

Target (DESIGN.md): ratio <= 0.5 on both sizes (issue 14: <= 0.8 at ~28M, goal 0.5).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

# this checkout's packages, not an installed copy; model_sizes beside this file
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
from machine_load import load_note  # noqa: E402
from model_sizes import SHAPES, SIZES, model_dir  # noqa: E402

import reward_models  # noqa: E402

PROMPTS = [
    "the movie was", "i went to the restaurant and", "the hotel room", "this book is", "we ordered the pasta",
    "the service at the front desk", "my flight was", "the concert last night", "the new phone", "our waiter",
    "the plot of the film", "the coffee here", "this game", "the staff were", "the view from the room",
    "the ending of the story",
]
_VADER = reward_models.make("vader")


def vader_reward(prompts: list[str], completions: list[str], **kwargs: object) -> list[float]:
    """TRL's reward-function protocol is ours: (prompts, completions, **columns) -> list[float]."""
    return [float(r) for r in _VADER(prompts, completions)]


VARIANTS = {
    "plain": {"rollout_cache": "dynamic", "shared_prefill": False, "shared_scoring": False, "precision": "fp32"},
    "default": {},
    "noscoring": {"shared_scoring": False},
    "bf16roll": {"rollout_precision": "bf16"},
    "bf16ref": {"reference_precision": "bf16"},
    "fast": {"rollout_precision": "bf16", "reference_precision": "bf16"},
    "bf16": {"precision": "bf16"},
}


def run_ours(args: argparse.Namespace, model: str, out: Path, variant: str) -> tuple[float, float, list[float]]:
    from agents.training.config import TrainConfig
    from agents.training.trainer import Trainer

    config = TrainConfig(
        algo="grpo", env="rlenv/TextGen-v0", model=model, steps=args.steps, batch_size=args.batch_size,
        group_size=args.group_size, max_new_tokens=args.max_new_tokens, lr=args.lr, kl_coef=args.beta,
        kl_estimator="k3", loss_aggregation="token-mean", seed=args.seed, out=str(out), device=args.device,
        checkpoint_every=0, **VARIANTS[variant],
        env_args=(f"prompts={json.dumps(PROMPTS)}", "reward_model=vader", "max_prompt_tokens=16"),
    )
    t0 = time.perf_counter()
    trainer = Trainer(config)
    t1 = time.perf_counter()
    result = trainer.run()
    # the training loop's time: the run's own clock at the end of its last update, which leaves out
    # the final checkpoint and curve plot (TRL runs with save_strategy="no" and plots nothing)
    return t1 - t0, result.metrics[-1]["elapsed_s"], [r["reward_mean"] for r in result.metrics]


def run_trl(args: argparse.Namespace, model: str, out: Path, bf16: bool) -> tuple[float, float, list[float]]:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    dataset = Dataset.from_dict({"prompt": PROMPTS * (args.steps * args.batch_size // len(PROMPTS) + 1)})
    config = GRPOConfig(
        output_dir=str(out), max_steps=args.steps, per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=1, num_generations=args.group_size, max_completion_length=args.max_new_tokens,
        learning_rate=args.lr, beta=args.beta, num_iterations=1, loss_type="dapo", scale_rewards="group",
        temperature=1.0, top_p=1.0, seed=args.seed,
        # best CPU settings: fp32, no checkpointing, no reporting / logging / saving
        use_cpu=args.device == "cpu", bf16=bf16, fp16=False, gradient_checkpointing=False, report_to="none",
        logging_strategy="no", save_strategy="no", disable_tqdm=True, log_completions=False,
        dataloader_num_workers=0, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        max_grad_norm=1.0, disable_dropout=True,
    )
    rewards: list[float] = []

    def logged_reward(prompts: list[str], completions: list[str], **kwargs: object) -> list[float]:
        scores = vader_reward(prompts, completions)
        rewards.append(sum(scores) / len(scores))
        return scores

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = GRPOTrainer(model=model, reward_funcs=logged_reward, args=config, train_dataset=dataset)
    t1 = time.perf_counter()
    trainer.train()
    return t1 - t0, time.perf_counter() - t1, rewards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=[*SIZES, *SHAPES, "both"], default="both")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="cuda: rlenv on the GPU (its defaults: bf16 autocast there) and TRL without use_cpu")
    parser.add_argument("--model", default=None, help="a saved model dir instead of --size")
    parser.add_argument("--variants", default="plain,default,fast", help=f"comma-separated rlenv sides from {list(VARIANTS)}")
    parser.add_argument("--trl", default="fp32", help="comma-separated TRL sides: fp32 (the reference side), bf16")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32, help="completions per optimizer step")
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--beta", type=float, default=0.04, help="KL coefficient (both sides load a reference)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if args.model:
            run_size("model", args.model, args, variants, tmp_path)
            return
        for size in SIZES if args.size == "both" else (args.size,):
            run_size(size, model_dir(size, tmp_path), args, variants, tmp_path)


def run_size(size: str, model: str, args: argparse.Namespace, variants: list[str], tmp: Path) -> None:
    print(f"\n== {size}: {model}; {args.steps} steps of {args.batch_size} completions "
          f"({args.batch_size // args.group_size} prompts x {args.group_size}), {args.max_new_tokens} new tokens, "
          f"beta {args.beta}, torch threads {torch.get_num_threads()}\n   before: {load_note()}")
    sides = [(f"trl-{p}" if p != "fp32" else "trl", p) for p in args.trl.split(",")]
    sides += [(f"rlenv-{v}", v) for v in variants]
    times: dict[str, list[float]] = {side: [] for side, _ in sides}
    for repeat in range(args.repeats):
        for side, variant in sides if repeat % 2 == 0 else sides[::-1]:
            out = tmp / f"{size}-{side}-{repeat}"
            if side.startswith("trl"):
                setup, train_s, rewards = run_trl(args, model, out, bf16=variant == "bf16")
            else:
                setup, train_s, rewards = run_ours(args, model, out, variant)
            times[side].append(train_s)
            print(f"  {side:15s} repeat {repeat}: setup {setup:5.1f}s  train {train_s:6.1f}s  "
                  f"({train_s / args.steps:.2f} s/step)  reward first/last {rewards[0]:+.3f}/{rewards[-1]:+.3f}  "
                  f"[{load_note()}]", flush=True)
    trl = statistics.median(times["trl"])
    print(f"  median of {args.repeats}: TRL {trl:.1f}s")
    for side, _ in sides[1:]:
        ours = statistics.median(times[side])
        extra = f", / TRL bf16 = {ours / statistics.median(times['trl-bf16']):.2f}" if "trl-bf16" in times else ""
        print(f"  {side:15s} {ours:6.1f}s  ratio / TRL fp32 = {ours / trl:.2f}{extra}")
    print(f"   after: {load_note()}", flush=True)


if __name__ == "__main__":
    main()
