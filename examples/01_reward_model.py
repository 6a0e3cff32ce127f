"""Train a learned reward model two ways: regression on scores (MSE) and preferences (Bradley–Terry).

What it teaches
---------------
A reward model (RM) is just a text -> number function. The seeds' RM is a small Transformer
encoder whose first-token state goes through a linear head to one scalar. It can learn from:

* **scored text** (pointwise MSE): each sentence carries a number, here its VADER compound score
  in [-1, 1]; we judge the RM by the Pearson correlation between its outputs and the held-out
  scores, against a constant predictor (the training-set mean, correlation 0);
* **preference pairs** (Bradley–Terry): each example only says "A is better than B"; the loss is
  ``-log sigmoid(r(A) - r(B))`` and we judge the RM by how often it ranks held-out pairs the right
  way round, against a coin flip (50 %).

Bradley–Terry never sees a score, yet it learns a scale that ranks the sentences the same way:
the script also reports the BT model's Pearson correlation with VADER on the scored validation
texts, i.e. how much of the absolute signal the pairwise data recovered.

Everything is offline: the sentences come from ``reward_models.datasets`` (review-like text
labelled by VADER), and the tokenizer is a word-level one trained on the data.

Run
---
    python examples/01_reward_model.py                 # about a minute on 2 CPU cores
    python examples/01_reward_model.py --out /tmp/rm   # PNG + data + checkpoints there
    RLENV_EXAMPLES_QUICK=1 python examples/01_reward_model.py   # smoke test: tiny data, 2 epochs

Writes ``<out>/01_reward_model.png`` (learning curves) and the two trained RMs under ``<out>``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # noqa: E402

from reward_models import RMTrainConfig, train_reward_model  # noqa: E402
from reward_models.datasets import preference_pairs, sentiment_dataset, write_jsonl  # noqa: E402
from reward_models.metrics import pearson  # noqa: E402

QUICK = os.environ.get("RLENV_EXAMPLES_QUICK") == "1"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("examples/out"), help="output directory")
    parser.add_argument("--num-texts", type=int, default=120 if QUICK else 1600, help="scored sentences")
    parser.add_argument("--num-pairs", type=int, default=80 if QUICK else 1000, help="preference pairs")
    parser.add_argument("--epochs", type=int, default=2 if QUICK else 6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1 if QUICK else 2, help="torch CPU threads")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    # 1. Data: review-like sentences scored by VADER, and pairs where the more positive one wins.
    scored = sentiment_dataset(args.num_texts, seed=args.seed)
    pairs = preference_pairs(args.num_pairs, seed=args.seed + 100)
    mse_file = write_jsonl([{"text": e.text, "score": e.score} for e in scored], args.out / "data" / "scored.jsonl")
    bt_file = write_jsonl(pairs, args.out / "data" / "pairs.jsonl")
    scores = np.array([e.score for e in scored])
    print(f"data: {len(scored)} scored sentences (VADER mean {scores.mean():+.2f}, std {scores.std():.2f}), "
          f"{len(pairs)} preference pairs")
    print(f"  e.g. {scored[0].text!r} -> {scored[0].score:+.3f}")
    print(f"  e.g. chosen {pairs[0]['chosen']!r} over rejected {pairs[0]['rejected']!r}")

    # 2. Train: the same small encoder (2 layers, width 64) with two different losses.
    common = dict(epochs=args.epochs, batch_size=32, lr=1e-3, seed=args.seed, include_prompt=False)
    mse = train_reward_model(RMTrainConfig(loss="mse", data=str(mse_file), out=str(args.out / "rm_mse"), **common))
    bt = train_reward_model(RMTrainConfig(loss="bt", data=str(bt_file), out=str(args.out / "rm_bt"), **common))

    # 3. How well does each model track VADER on sentences neither has seen?
    held_out = sentiment_dataset(200 if not QUICK else 40, seed=args.seed + 999)
    texts, gold = [e.text for e in held_out], np.array([e.score for e in held_out])
    mse_pred, bt_pred = mse.model.predict(texts).numpy(), bt.model.predict(texts).numpy()
    mse_corr, bt_corr = pearson(mse_pred, gold), pearson(bt_pred, gold)

    print("\nMSE reward model (regresses the VADER score)")
    print("  epoch  train_loss  val_mse  val_pearson")
    for h in mse.history:
        print(f"  {int(h['epoch']):>5}  {h['train_loss']:>10.4f}  {h['mse']:>7.4f}  {h['pearson']:>11.3f}")
    print(f"  validation ({mse.num_val} texts): Pearson {mse.val_metrics['pearson']:.3f}, "
          f"Spearman {mse.val_metrics['spearman']:.3f}, MSE {mse.val_metrics['mse']:.4f}")
    print(f"  constant baseline (train mean):  Pearson {mse.baseline_metrics['pearson']:.3f}, "
          f"MSE {mse.baseline_metrics['mse']:.4f}  -> the RM explains "
          f"{1 - mse.val_metrics['mse'] / mse.baseline_metrics['mse']:.0%} of the variance")

    print("\nBradley-Terry reward model (learns only from 'A beats B')")
    print("  epoch  train_loss  val_bt_loss  val_pairwise_acc")
    for h in bt.history:
        print(f"  {int(h['epoch']):>5}  {h['train_loss']:>10.4f}  {h['bt_loss']:>11.4f}  "
              f"{h['pairwise_accuracy']:>16.3f}")
    print(f"  validation ({bt.num_val} pairs): pairwise accuracy {bt.val_metrics['pairwise_accuracy']:.3f}, "
          f"BT loss {bt.val_metrics['bt_loss']:.4f}")
    print(f"  constant baseline (coin flip):  pairwise accuracy {bt.baseline_metrics['pairwise_accuracy']:.3f}, "
          f"BT loss {bt.baseline_metrics['bt_loss']:.4f} (= log 2)")

    print(f"\nPearson with VADER on {len(held_out)} fresh sentences: MSE RM {mse_corr:.3f}, BT RM {bt_corr:.3f}, "
          "constant 0.000")
    probe = ["The movie was wonderful!", "The plot was dull but the acting was great.", "The food was awful."]
    mse_scores, bt_scores = mse.model([""] * 3, probe), bt.model([""] * 3, probe)
    analyzer = SentimentIntensityAnalyzer()
    print("  text                                             VADER   MSE RM   BT RM (arbitrary scale)")
    for text, m, b in zip(probe, mse_scores, bt_scores, strict=True):
        print(f"  {text:<47} {analyzer.polarity_scores(text)['compound']:+.3f}  {m:+.3f}   {b:+.3f}")

    # 4. Plot the learning curves.
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    epochs_mse = [h["epoch"] for h in mse.history]
    epochs_bt = [h["epoch"] for h in bt.history]
    axes[0].plot(epochs_mse, [h["train_loss"] for h in mse.history], "o-", label="MSE: train loss")
    axes[0].plot(epochs_mse, [h["mse"] for h in mse.history], "s--", label="MSE: validation MSE")
    axes[0].axhline(mse.baseline_metrics["mse"], color="grey", ls=":", label="constant predictor MSE")
    axes[0].plot(epochs_bt, [h["train_loss"] for h in bt.history], "o-", label="BT: train loss")
    axes[0].plot(epochs_bt, [h["bt_loss"] for h in bt.history], "s--", label="BT: validation loss")
    axes[0].axhline(bt.baseline_metrics["bt_loss"], color="black", ls=":", label="coin-flip BT loss (log 2)")
    axes[0].set(title="Loss per epoch", xlabel="epoch", ylabel="loss")
    axes[0].legend(fontsize=7)
    axes[1].plot(epochs_mse, [h["pearson"] for h in mse.history], "o-", label="Pearson")
    axes[1].plot(epochs_mse, [h["spearman"] for h in mse.history], "s--", label="Spearman")
    axes[1].axhline(0.0, color="grey", ls=":", label="constant predictor")
    axes[1].set(title="MSE RM: validation correlation with VADER", xlabel="epoch", ylim=(-0.1, 1.0))
    axes[1].legend(fontsize=8)
    axes[2].plot(epochs_bt, [h["pairwise_accuracy"] for h in bt.history], "o-", color="C2", label="BT RM")
    axes[2].axhline(0.5, color="grey", ls=":", label="coin flip")
    axes[2].set(title="BT RM: validation pairwise accuracy", xlabel="epoch", ylim=(0.4, 1.0))
    axes[2].legend(fontsize=8)
    axes[3].scatter(gold, mse_pred, s=10, alpha=0.6, label=f"MSE RM (r={mse_corr:.2f})")
    axes[3].plot([-1, 1], [-1, 1], color="grey", ls=":", lw=1)
    axes[3].set(title="Fresh sentences: RM vs VADER", xlabel="VADER compound", ylabel="MSE RM output")
    axes[3].legend(fontsize=8, loc="upper left")
    fig.suptitle(f"Learned reward models ({len(scored)} scored texts, {len(pairs)} pairs)")
    fig.tight_layout()
    png = args.out / "01_reward_model.png"
    fig.savefig(png, dpi=110)
    print(f"\nsaved {png} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
