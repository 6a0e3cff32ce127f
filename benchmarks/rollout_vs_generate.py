"""Env-stepped rollouts vs ``model.generate``: tokens/s on the same model, in the same process.

Both sides sample with a KV cache from the plain softmax (temperature 1, no top-k/top-p) and make
exactly ``max_new_tokens`` tokens per row: ``generate`` with ``min_new_tokens = max_new_tokens``, the
env with EOS suppressed at the LM head (so no episode ends early) and a reward model that returns
zeros (so the comparison is about the loop, not the reward). Each timing is the median of several
repeats after a warm-up, the two sides alternating.

    python benchmarks/rollout_vs_generate.py                 # random-init GPT-2, 4 layers x 256
    python benchmarks/rollout_vs_generate.py --model PATH    # any saved causal LM + tokenizer

Target (DESIGN.md): ratio >= 0.8, aim >= 1.0, and cost roughly linear in the number of new tokens.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

import rlenv
from agents.policy import LMPolicy, resolve_device
from agents.rollout import collect_rollouts

PROMPTS = [
    "the movie was", "i went to the restaurant and", "the hotel room", "this book is",
    "we ordered the pasta", "the service at the front desk", "my flight was", "the concert last night",
]


def word_tokenizer(vocab_size: int) -> PreTrainedTokenizerFast:
    """A word-level tokenizer of ``vocab_size`` entries (prompt words + filler), built offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    words = sorted({w for p in PROMPTS for w in p.split()})
    specials = ["<unk>", "<|endoftext|>", "<|pad|>"]
    filler = [f"w{i}" for i in range(vocab_size - len(specials) - len(words))]
    core = Tokenizer(models.WordLevel({t: i for i, t in enumerate(specials + words + filler)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", eos_token="<|endoftext|>",
                                   pad_token="<|pad|>")


def load_policy(args: argparse.Namespace) -> LMPolicy:
    device = resolve_device(args.device)
    if args.model:
        return LMPolicy.from_pretrained(args.model, device=device)
    default = Path(rlenv.DEFAULT_MODEL)
    if (default / "tokenizer.json").exists() or (default / "tokenizer_config.json").exists():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(default))
    else:
        tokenizer = word_tokenizer(args.vocab_size)
    torch.manual_seed(0)
    config = GPT2Config(n_layer=4, n_embd=256, n_head=4, n_positions=512, vocab_size=len(tokenizer),
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    return LMPolicy(GPT2LMHeadModel(config), tokenizer).to(device)


def suppress_eos(policy: LMPolicy) -> None:
    """EOS gets -inf at the LM head, so every episode runs to max_new_tokens (as min_new_tokens does)."""
    eos = policy.eos_token_id

    def hook(module, inputs, output):
        output[..., eos] = float("-inf")
        return output

    policy.model.get_output_embeddings().register_forward_hook(hook)


def median_times(fns, repeats: int, sync) -> list[float]:
    """Median seconds of each function; the functions alternate within every repeat, so a change in
    machine load (shared CPUs) hits both sides alike."""
    for fn in fns:
        fn()  # warm-up
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, bucket in zip(fns, times, strict=True):
            sync()
            start = time.perf_counter()
            fn()
            sync()
            bucket.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def measure(policy: LMPolicy, batch: int, new_tokens: int, repeats: int) -> tuple[float, float]:
    """Seconds per batch for (collect_rollouts, generate), each the median of ``repeats``."""
    envs = rlenv.TextGenVectorEnv(
        num_envs=batch, tokenizer=policy.tokenizer, prompts=PROMPTS,
        reward_model=lambda prompts, completions, **kw: [0.0] * len(completions),
        autoreset_mode="Disabled", max_prompt_tokens=16, max_new_tokens=new_tokens,
    )
    device = policy.device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    seeds = iter(range(10**6))

    # generate on the same left-padded prompts the env feeds the policy
    obs, _ = envs.reset(seed=0)
    ids = torch.from_numpy(obs["input_ids"][:, :16]).to(device)
    mask = torch.from_numpy(obs["attention_mask"][:, :16]).long().to(device)
    model, tok = policy.model, policy.tokenizer

    def generate():
        with torch.no_grad():
            out = model.generate(
                input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
            )
        assert out.shape[1] == 16 + new_tokens

    rollout_s, generate_s = median_times(
        [lambda: collect_rollouts(policy, envs, seed=next(seeds)), generate], repeats, sync
    )
    return rollout_s, generate_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="saved model dir (default: random-init GPT-2 4x256)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--vocab-size", type=int, default=8192, help="word-level vocab when no tokenizer is at hand")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--skip-scaling", action="store_true", help="skip the 32 vs 128 new-token run")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    policy = load_policy(args)
    policy.eval()
    suppress_eos(policy)
    print(f"model: {args.model or 'random-init GPT-2 4x256'}  vocab={len(policy.tokenizer)}  "
          f"device={policy.device}  threads={torch.get_num_threads()}  batch={args.batch_size}")

    B, T = args.batch_size, args.max_new_tokens
    rollout_s, generate_s = measure(policy, B, T, args.repeats)
    print(f"{T} new tokens: collect_rollouts {B * T / rollout_s:9.0f} tok/s ({rollout_s * 1e3:.1f} ms)   "
          f"generate {B * T / generate_s:9.0f} tok/s ({generate_s * 1e3:.1f} ms)")
    print(f"ratio rollout/generate tokens/s: {generate_s / rollout_s:.2f}  (target >= 0.8, aim >= 1.0)")

    if not args.skip_scaling:
        short = measure(policy, B, 32, args.repeats)
        long = measure(policy, B, 128, args.repeats)
        for name, i in (("collect_rollouts", 0), ("generate", 1)):
            print(f"{name:>16}: 32 -> 128 new tokens costs x{long[i] / short[i]:.2f} "
                  f"({short[i] * 1e3:.1f} -> {long[i] * 1e3:.1f} ms; x4 is linear)")


if __name__ == "__main__":
    main()
