"""Per-token overhead of the native vector env, as a fraction of one batched LM forward.

Both sides run in this process on the same batch: the env steps 64 sub-envs with random (non-EOS)
tokens and a free reward model, and the embedded model ``rlenv.DEFAULT_MODEL`` (GPT-2, 4 layers x 224;
or the model at ``--model``) does (a) one KV-cached incremental forward of one token per sequence, the forward a
rollout actually pays per token, and (b) one full forward over the whole (B, L) batch. Target: env
step < 5% of (a).

    python benchmarks/env_step_overhead.py [--batch 64] [--max-new-tokens 64] [--model PATH]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from transformers import AutoModelForCausalLM, DynamicCache

from rlenv import DEFAULT_MODEL, TextGenVectorEnv


def zero_reward(prompts, completions, **kwargs):
    return [0.0] * len(completions)


def time_env_steps(envs: TextGenVectorEnv, steps: int, rng: np.random.Generator) -> float:
    """Seconds per vector-env step, over ``steps`` steps including the autoresets and reward calls."""
    vocab = envs.single_action_space.n
    eos = envs.eos_token_id
    actions = rng.integers(0, vocab, size=(steps, envs.num_envs))
    actions[actions == eos] = (eos + 1) % vocab  # lengths are the budget, so every episode is full-size
    envs.reset(seed=0)
    start = time.perf_counter()
    for a in actions:
        envs.step(a)
    return (time.perf_counter() - start) / steps


@torch.inference_mode()
def time_forwards(model, batch: int, prefix: int, seq_len: int, repeats: int) -> tuple[float, float]:
    """Median seconds of (incremental one-token forward with a ``prefix``-long cache, full forward)."""
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (batch, seq_len))
    cache = DynamicCache()
    model(ids[:, :prefix], past_key_values=cache, use_cache=True)
    incremental, full = [], []
    for _ in range(repeats):
        step_cache = DynamicCache()
        model(ids[:, :prefix], past_key_values=step_cache, use_cache=True)
        t0 = time.perf_counter()
        model(ids[:, prefix : prefix + 1], past_key_values=step_cache, use_cache=True)
        incremental.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model(ids)
        full.append(time.perf_counter() - t0)
    return statistics.median(incremental), statistics.median(full)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--max-prompt-tokens", type=int, default=32)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="local causal LM + tokenizer directory")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)

    envs = TextGenVectorEnv(args.batch, tokenizer=args.model, reward_model=zero_reward,
                            max_prompt_tokens=args.max_prompt_tokens, max_new_tokens=args.max_new_tokens)
    rng = np.random.default_rng(0)
    time_env_steps(envs, args.max_new_tokens, rng)  # warm-up
    env_step = statistics.median(time_env_steps(envs, args.max_new_tokens * 2, rng) for _ in range(5))

    model = AutoModelForCausalLM.from_pretrained(args.model, use_safetensors=True).eval()
    name = f"LM {model.config.model_type} {model.config.num_hidden_layers}x{model.config.hidden_size}"
    seq_len = args.max_prompt_tokens + args.max_new_tokens
    prefix = args.max_prompt_tokens + args.max_new_tokens // 2  # a mid-episode cache length
    incremental, full = time_forwards(model, args.batch, prefix, seq_len, args.repeats)

    print(f"batch={args.batch} L={seq_len} threads={torch.get_num_threads()}")
    print(f"env step (all {args.batch} sub-envs, incl. autoreset + reward calls): {env_step * 1e6:8.1f} us")
    print(f"{name} incremental forward (1 token, cache {prefix}): {incremental * 1e6:8.1f} us")
    print(f"{name} full forward ({args.batch} x {seq_len}): {full * 1e6:8.1f} us")
    print(f"overhead vs incremental forward: {env_step / incremental:.1%} (target < 5%)")
    print(f"overhead vs full forward:        {env_step / full:.1%}")


if __name__ == "__main__":
    main()
