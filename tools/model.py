"""The embedded model: a GPT-2-style LM trained from scratch on the corpus, each document + EOS.

``python -m tools.model --model-dir rlenv/assets/default_model`` (after ``tools.corpus`` and
``tools.tokenizer``) trains for about 34 minutes on 2 CPU threads and records what it did in
``build_info.json``: the corpus and tokenizer hashes, both configurations, wall time and held-out
perplexity. Too long for CI, so the tests check the shipped model's configuration against
:class:`TrainConfig` instead.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tools.corpus import BUILD_DIR, SEED, CorpusConfig, read_documents
from tools.hashing import sha256_file
from tools.tokenizer import MAX_LENGTH


@dataclass(frozen=True)
class TrainConfig:
    seed: int = SEED
    n_layer: int = 4
    n_embd: int = 224
    n_head: int = 4
    n_positions: int = MAX_LENGTH
    dropout: float = 0.1
    block_size: int = MAX_LENGTH  # tokens per packed training row
    batch_size: int = 16  # rows per step
    steps: int = 4000
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 150
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    holdout_fraction: float = 0.02
    threads: int = 2
    autocast: str | None = (
        "bf16"  # matmuls under CPU bf16 autocast, weights and optimizer in fp32; None: fp32
    )

    def __post_init__(self) -> None:
        if self.autocast not in (None, "bf16"):
            raise ValueError(f"autocast must be 'bf16' or None (fp32 throughout), got {self.autocast!r}")


def pack_rows(docs: Sequence[list[int]], block_size: int) -> list[list[int]]:
    """Greedily pack whole documents (never split) into rows of at most ``block_size`` tokens, so every
    row starts at a document start, as prompts do at inference."""
    rows: list[list[int]] = []
    row: list[int] = []
    for doc in docs:
        doc = doc[:block_size]
        if len(row) + len(doc) > block_size:
            rows.append(row)
            row = []
        row = row + doc
    if row:
        rows.append(row)
    return rows


def _batches(rows: list[list[int]], batch_size: int, pad_id: int):
    import torch

    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        width = max(len(r) for r in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)  # (B, T)
        labels = torch.full((len(chunk), width), -100, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, r in enumerate(chunk):
            ids[i, : len(r)] = torch.tensor(r)
            labels[i, : len(r)] = ids[i, : len(r)]
            mask[i, : len(r)] = 1
        yield ids, mask, labels


def train_model(
    documents: Sequence[str],
    tokenizer_dir: Path,
    out: Path,
    config: TrainConfig = TrainConfig(),
    on_log=None,
    init_from: Path | None = None,
) -> dict:
    """Train a GPT-2-style LM on ``documents`` (each + EOS): from scratch, or (``init_from``) on from
    a saved model, its embeddings grown to the tokenizer's new tokens (mean-initialised). Save it
    with the tokenizer into ``out``; return the build record (the caller adds its inputs' hashes)."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    started = time.time()
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(True)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    encoded = [ids + [tokenizer.eos_token_id] for ids in tokenizer(documents)["input_ids"]]

    rng = random.Random(f"{config.seed}-holdout")
    order = list(range(len(encoded)))
    rng.shuffle(order)
    n_holdout = int(len(encoded) * config.holdout_fraction)
    holdout = [encoded[i] for i in sorted(order[:n_holdout])]
    train = [encoded[i] for i in sorted(order[n_holdout:])]

    model_config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=config.n_positions,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        resid_pdrop=config.dropout,
        embd_pdrop=config.dropout,
        attn_pdrop=config.dropout,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    if init_from is None:
        model = GPT2LMHeadModel(model_config)
    else:
        model = GPT2LMHeadModel.from_pretrained(str(init_from))
        model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=(0.9, 0.95),
    )

    def lr_at(step: int) -> float:
        if step < config.warmup_steps:
            return config.lr * (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))

    def epochs() -> Iterator[tuple]:
        epoch = 0
        while True:
            shuffled = list(train)
            random.Random(f"{config.seed}-epoch-{epoch}").shuffle(shuffled)
            rows = pack_rows(shuffled, config.block_size)
            yield from _batches(rows, config.batch_size, tokenizer.pad_token_id)
            epoch += 1

    model.train()
    n_train_tokens = sum(len(d) for d in train)
    batches = epochs()
    tokens_seen = 0
    for step in range(config.steps):
        ids, mask, labels = next(batches)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.autocast == "bf16"):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        tokens_seen += int(mask.sum())
        if on_log is not None and (step % 50 == 0 or step == config.steps - 1):
            on_log(
                f"step {step}/{config.steps} loss {loss.item():.3f} lr {lr_at(step):.2e} "
                f"epoch {tokens_seen / n_train_tokens:.2f} {time.time() - started:.0f}s"
            )

    model.eval()
    holdout_nll, holdout_tokens = 0.0, 0
    with torch.no_grad():
        for ids, mask, labels in _batches(
            pack_rows(holdout, config.block_size), config.batch_size, tokenizer.pad_token_id
        ):
            n = int((labels[:, 1:] != -100).sum())
            holdout_nll += model(input_ids=ids, attention_mask=mask, labels=labels).loss.item() * n
            holdout_tokens += n
    perplexity = math.exp(holdout_nll / holdout_tokens)

    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    for source in sorted(tokenizer_dir.iterdir()):  # byte-identical to the reproducible tokenizer build
        shutil.copyfile(source, out / source.name)
    info = {
        "seed": config.seed,
        "tokenizer_json_sha256": sha256_file(out / "tokenizer.json"),
        "train_config": asdict(config),
        "documents": len(documents),
        "train_documents": len(train),
        "holdout_documents": len(holdout),
        "corpus_tokens": sum(len(d) for d in encoded),
        "tokens_seen": tokens_seen,
        "training_steps": config.steps,
        "init_from": None if init_from is None else "the base model (see base)",
        "parameters": sum(p.numel() for p in model.parameters()),
        "wall_time_s": round(time.time() - started, 1),
        "holdout_perplexity": round(perplexity, 3),
        "torch_version": torch.__version__,
    }
    return info


def write_build_info(model_dir: Path, info: dict) -> None:
    """``model_dir/build_info.json``: the record of how the shipped model was made."""
    (model_dir / "build_info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.model", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=BUILD_DIR, help="build directory: reads corpus.txt and tokenizer/"
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help="where the trained model goes (default: OUT/model); pass "
        "rlenv/assets/default_model to replace the shipped one",
    )
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    args = parser.parse_args(argv)
    model_dir = args.model_dir or args.out / "model"
    info = train_model(
        read_documents(args.out / "corpus.txt"),
        args.out / "tokenizer",
        model_dir,
        TrainConfig(steps=args.steps),
        on_log=lambda line: print(line, flush=True),
    )
    info = {
        "seed": info["seed"],
        "corpus_sha256": sha256_file(args.out / "corpus.txt"),
        "corpus_config": asdict(CorpusConfig()),
        **info,
    }
    write_build_info(model_dir, info)
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
