"""What ``--reference-precision bf16`` costs in accuracy and saves in time: the frozen reference's
logprobs of sampled episodes in fp32 and under bf16 autocast, on the same batch, same process.

The reference is never differentiated; its logprobs enter only the KL to the reference (a reward
penalty or a loss term, and the logged KL). Its error is therefore reported the way it reaches the
KL: per generated token, and summed over each episode (the summed-logprob KL estimate of an episode
moves by at most that much).

    python benchmarks/reference_precision.py              # both sizes, batch 32, 32 new tokens

Results on this 2-core CPU (AMD EPYC, avx512_bf16), one thread, PositiveReview prompts, episodes
sampled by the model itself (one other engineer's job on the other core):

    size      |dlogp| per token (mean / max)   per-episode sum (mean)   forward fp32 -> bf16
    embedded  0.0082 / 0.048                   0.034 nats               0.095 s -> 0.045 s (x2.1)
    28m       0.0027 / 0.011                   0.018 nats               0.786 s -> 0.253 s (x3.1)

(Storing the reference's weights in bf16 instead of autocasting was slower on this CPU — 0.43 s at
28M, the non-matmul ops run in bf16 too — and no more accurate, so the option autocasts.)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

# this checkout's packages, not an installed copy; model_sizes beside this file
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
from model_sizes import SIZES, model_dir  # noqa: E402


def run_size(size: str, model: str, args: argparse.Namespace) -> None:
    import gymnasium as gym

    from agents.training.policy import LMPolicy
    from agents.training.rollout import collect_rollouts

    policy = LMPolicy.from_pretrained(model, device="cpu")
    envs = gym.make_vec("rlenv/PositiveReview-v0", num_envs=args.batch_size, vectorization_mode="vector_entry_point",
                        autoreset_mode="Disabled", tokenizer=model, max_new_tokens=args.max_new_tokens)
    batch = collect_rollouts(policy, envs, seed=args.seed)
    reference = policy.reference()
    mask = batch.response_mask

    def score() -> tuple[torch.Tensor, float]:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            logprobs = reference.score_sequences(batch.input_ids, batch.attention_mask, batch.prompt_length).logprobs
            times.append(time.perf_counter() - start)
        return logprobs, sorted(times)[len(times) // 2]

    fp32, fp32_s = score()
    with reference.autocast(torch.bfloat16):
        bf16, bf16_s = score()
    diff = (bf16 - fp32)[mask.bool()].abs()
    per_episode = ((bf16 - fp32) * mask).sum(1).abs().mean()
    print(f"{size:9s} |dlogp| per token mean {diff.mean():.4f} max {diff.max():.3f}; per-episode sum "
          f"{per_episode:.3f} nats; forward {fp32_s:.3f} s -> {bf16_s:.3f} s (x{fp32_s / bf16_s:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=[*SIZES, "both"], default="both")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    with tempfile.TemporaryDirectory() as scratch:
        for size in SIZES if args.size == "both" else (args.size,):
            run_size(size, model_dir(size, Path(scratch)), args)


if __name__ == "__main__":
    main()
