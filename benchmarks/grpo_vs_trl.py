"""Our GRPO vs TRL's ``GRPOTrainer``: wall time of the same training run, in the same process.

Both sides get the same model (loaded from the same directory), the same prompts, the same reward
function (VADER compound of the completion, via ``reward_models``), group size, completions per
step, completion length, learning rate, KL coefficient (k3 estimator in the loss on both sides),
one optimizer step per batch and one iteration per batch, and the same number of steps. TRL gets its
best CPU settings: fp32 (``bf16=False``), no gradient checkpointing, ``use_cpu=True``, no reporting,
no logging, no saving, no progress bar. Sides alternate over ``--repeats``; the median counts.
Timed: the training call only (``trainer.train()`` vs ``Trainer.run()``); setup is reported apart.

    python benchmarks/grpo_vs_trl.py                       # rlenv.DEFAULT_MODEL if built, else a random GPT-2
    python benchmarks/grpo_vs_trl.py --model PATH --steps 10 --batch-size 16 --group-size 4 --max-new-tokens 24

Target (DESIGN.md): ours/TRL wall-time ratio <= 1.0 (aim 0.5).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

import reward_models
import rlenv

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


def tiny_random_model(directory: Path) -> str:
    """A 4-layer, 128-wide random GPT-2 over a word vocabulary with sentiment words (fallback model)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    words = sorted({w for p in PROMPTS for w in p.split()} | set(
        "good great bad awful fine love hate nice terrible wonderful boring and but very not it was is a".split()))
    specials = ["<unk>", "<|endoftext|>", "<|pad|>"]
    core = Tokenizer(models.WordLevel({t: i for i, t in enumerate(specials + words)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", eos_token="<|endoftext|>",
                                        pad_token="<|pad|>")
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_layer=4, n_embd=128, n_head=4, n_positions=128,
                        bos_token_id=1, eos_token_id=1, pad_token_id=2)
    GPT2LMHeadModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


def run_ours(args: argparse.Namespace, model: str, out: Path) -> tuple[float, float, list[float]]:
    from agents.config import TrainConfig
    from agents.trainer import Trainer

    config = TrainConfig(
        algo="grpo", env="rlenv/TextGen-v0", model=model, steps=args.steps, batch_size=args.batch_size,
        group_size=args.group_size, max_new_tokens=args.max_new_tokens, lr=args.lr, kl_coef=args.beta,
        kl_estimator="k3", loss_aggregation="token-mean", seed=args.seed, out=str(out), device="cpu",
        checkpoint_every=0,
        env_args=(f"prompts={json.dumps(PROMPTS)}", "reward_model=vader", "max_prompt_tokens=16"),
    )
    t0 = time.perf_counter()
    trainer = Trainer(config)
    t1 = time.perf_counter()
    result = trainer.run()
    return t1 - t0, time.perf_counter() - t1, [r["reward_mean"] for r in result.metrics]


def run_trl(args: argparse.Namespace, model: str, out: Path) -> tuple[float, float, list[float]]:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    dataset = Dataset.from_dict({"prompt": PROMPTS * (args.steps * args.batch_size // len(PROMPTS) + 1)})
    config = GRPOConfig(
        output_dir=str(out), max_steps=args.steps, per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=1, num_generations=args.group_size, max_completion_length=args.max_new_tokens,
        learning_rate=args.lr, beta=args.beta, num_iterations=1, loss_type="dapo", scale_rewards="group",
        temperature=1.0, top_p=1.0, seed=args.seed,
        # best CPU settings: fp32, no checkpointing, no reporting / logging / saving
        use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False, report_to="none",
        logging_strategy="no", save_strategy="no", disable_tqdm=True, log_completions=False,
        dataloader_num_workers=0, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        max_grad_norm=1.0,
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
    parser.add_argument("--model", default=None, help="local model dir (default: rlenv.DEFAULT_MODEL if built)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=16, help="completions per optimizer step")
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--beta", type=float, default=0.04, help="KL coefficient (both sides load a reference)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model = args.model
        if model is None:
            default = Path(rlenv.DEFAULT_MODEL)
            model = str(default) if (default / "config.json").exists() else tiny_random_model(tmp_path / "model")
        print(f"model {model}; {args.steps} steps of {args.batch_size} completions "
              f"({args.batch_size // args.group_size} prompts x {args.group_size}), {args.max_new_tokens} new tokens, "
              f"beta {args.beta}, torch threads {torch.get_num_threads()}")
        times: dict[str, list[float]] = {"ours": [], "trl": []}
        for repeat in range(args.repeats):
            for side, fn in (("trl", run_trl), ("ours", run_ours)) if repeat % 2 == 0 else (
                    ("ours", run_ours), ("trl", run_trl)):
                setup, train_s, rewards = fn(args, model, tmp_path / f"{side}{repeat}")
                times[side].append(train_s)
                print(f"  {side:4s} repeat {repeat}: setup {setup:5.1f}s  train {train_s:6.1f}s  "
                      f"({train_s / args.steps:.2f} s/step)  reward first/last {rewards[0]:+.3f}/{rewards[-1]:+.3f}")
    ours, trl = statistics.median(times["ours"]), statistics.median(times["trl"])
    print(f"GRPO wall time, median of {args.repeats}: ours {ours:.1f}s, TRL {trl:.1f}s; "
          f"ratio ours/TRL = {ours / trl:.2f} (target <= 1.0, aim 0.5); speed-up {trl / ours:.2f}x")


if __name__ == "__main__":
    main()
