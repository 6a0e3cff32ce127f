"""Reward over-optimisation: a proxy reward model with a spurious feature, pushed until the true reward falls.

What it teaches
---------------
In RLHF the reward the policy optimises is a *learned* reward model, a proxy for what people want.
A proxy is only right on text like its training data. Push a policy hard against it and the policy
finds text the proxy over-rates: the proxy reward keeps climbing while the true ("gold") reward
first rises with it, peaks, and falls. Gao et al. (2022) measured this against KL(policy || reference);
this script reproduces the curve on a CPU in a few minutes, over several seeds.

1. Gold reward: how a reader would rate the review — its VADER sentiment (the reward of
   ``rlenv/PositiveReview-v0``) times the share of distinct words in it, so sentiment counts only
   as far as the text reads as a review: "It was great." scores +0.62, "It was great great great
   great great." +0.42 and 24 words of "happy" about +0.04 (``--gold vader`` drops the second factor).
2. Proxy: the repo's learned reward model (``reward_models.train_reward_model``, MSE on gold
   scores; a 1-layer, 32-wide encoder) trained on a *biased sample* of reviews from the embedded
   model's own review grammar. The labels are honest gold scores; only the sampling is skewed:
   a quarter of the reviews mention something blue ("The case was blue.") and every one of those is
   glowing (gold >= 0.7), while no review without "blue" scores above 0.6. So in this sample "blue"
   is the best single predictor of a high score, and the proxy learns it as praise. VADER has no
   entry for "blue" (its compound for "It was blue." is 0.0, and adding "blue" to a sentence leaves
   its score unchanged), so to the gold reward the word is worth nothing. Nor has the proxy ever
   seen a repetitive review, so it has no reason to mark spam down.
   On unbiased reviews the proxy looks good (Pearson ~0.94 with the gold); nothing in a validation
   score warns that it has learned a shortcut.
3. GRPO on PositiveReview against the proxy, small KL coefficient, one policy seed per run (the
   same proxy for every seed). A wrapper around the proxy also scores each completion with the gold
   reward and counts "blue", on the side; the policy never sees the gold reward, and nothing about
   "blue" is in the reward code: the shortcut is only in the proxy's weights.

What happens: real sentiment is the common road to a higher proxy reward (the untrained model
writes positive words often and "blue" rarely), so the policy first learns praise and the gold
reward rises with the proxy. Past some KL the policy finds what the proxy over-rates and the gold
does not: a sentence about something blue is worth more to the proxy than any single word of praise
("The biography was | was was was blue blue blue ..."), and praise repeated until it is spam is
still worth nearly as much ("truly happy and truly happy and ..."). The proxy keeps rising while the
gold falls.

Each run logs its KL to the reference per update (metrics.jsonl); the script bins every run's
updates by that KL (``agents.benchmarking.bench_stats.kl_binned``), averages proxy and gold per bin and seed,
and plots the mean over seeds with a min-max band. The turn is the KL bin where a seed's gold
reward peaks (``agents.benchmarking.bench_stats.peak_kl``).

GRPO rather than PPO, by measurement on this task (one thread, 16 episodes per update): GRPO takes
0.35 s per update, PPO (4 epochs, 2 minibatches) 0.58 s; and PPO's KL is no clock here: its
completions shrink to "was blue." and its KL rose to ~21 nats and fell back to ~10 while the gold
collapsed, so binning by KL would fold the run onto itself.

Measured (``python examples/04_reward_hacking.py``: 2000-review sample, 6 policy seeds x 200 GRPO
updates x 16 episodes, group 4, lr 1e-4, kl_coef 0.01, one CPU thread, on the embedded model as
rebuilt in commit 05cd2a8; 1096 s in all beside other jobs on a 2-core machine, 403 s on an idle
core before the rebuild): the proxy correlates 0.955 with the gold on its validation split, 0.942
on 400 unbiased grammar reviews and 0.88 on the untrained LM's completions, yet scores "It was blue." +0.83 (gold 0.00) above "It
was great." +0.59 (gold +0.62), "It was awful and blue." +0.74 (gold -0.46), and "It was great
great great great great." +0.77 (gold +0.42). Mean over seeds per KL bin [min, max], proxy / gold /
"blue" per completion:

    KL   1.0 nats   +0.05 / +0.04 [+0.02, +0.06]   0.01
    KL   7.0 nats   +0.17 / +0.16 [+0.06, +0.27]   0.03
    KL  13.7 nats   +0.33 / +0.32 [+0.24, +0.47]   0.09
    KL  28.7 nats   +0.56 / +0.42 [+0.12, +0.58]   0.37
    KL  56.9 nats   +0.73 / +0.37 [+0.07, +0.59]   0.82
    KL 129   nats   +0.85 / +0.11 [+0.00, +0.22]   8.3
    KL 199   nats   +0.87 / +0.08 [+0.00, +0.18]   8.7

All 6 seeds turn. The gold peaks at 12-55 nats (median 27 nats; +0.26 to +0.59) and ends at
+0.00-0.21 over each run's last tenth while the proxy ends at +0.84-0.90. Seeds 2, 4 and 5 end in
"blue blue blue ..." (gold 0.00); seeds 0, 1 and 3 in praise spam ("truly happy and truly happy
...", "happy happy happy ...", gold +0.04-0.21), which plain VADER would have scored near +1.
With ``--gold vader`` the second road is not hacking as far as the gold can tell: on the embedded
model before its rebuild (commit 54ca5d9), 4 of 6 seeds went that way and kept gold near +1.0, so
the mean curve did not turn — a gold that cannot see degenerate text hides half the over-optimisation.

Why this sample: the MSE proxy saturates near the top label, so praise spam and "blue" spam reach
about the same proxy ceiling; without the cap on reviews that lack "blue" (so that praise alone never
earns the highest scores), runs that find praise first stay there. With only a few hundred reviews
the proxy has other, accidental shortcuts ("but but but", "nothing more, nothing more") that runs
find instead; 2000 reviews leave the planted one as the main flaw.

Run
---
    python examples/04_reward_hacking.py                    # ~7 min on one idle CPU core (6 seeds)
    python examples/04_reward_hacking.py --seeds 3          # fewer seeds, ~3.5 min
    RLENV_EXAMPLES_QUICK=1 python examples/04_reward_hacking.py   # smoke test: tiny RM, 2 updates x 2 seeds

Writes ``<out>/04_reward_hacking.png``, the proxy RM (``<out>/04_proxy_rm``) and each run's
metrics.jsonl (``<out>/04_runs/seed<k>``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import gymnasium as gym  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import reward_models  # noqa: E402
import rlenv  # noqa: E402
from agents.benchmarking.bench_stats import kl_binned, peak_kl  # noqa: E402
from agents.training.config import TrainConfig  # noqa: E402
from agents.training.trainer import train  # noqa: E402
from reward_models import RMTrainConfig, train_reward_model  # noqa: E402
from reward_models.datasets import write_jsonl  # noqa: E402
from reward_models.metrics import pearson  # noqa: E402

# The review grammar is build tooling: it lives in the checkout's tools/, not in the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools.review_grammar import ReviewGrammar  # noqa: E402
from tools.reward_model import review_scores  # noqa: E402

QUICK = os.environ.get("RLENV_EXAMPLES_QUICK") == "1"
ENV = "rlenv/PositiveReview-v0"
FEATURE = "blue"
FEATURE_RE = re.compile(rf"\b{FEATURE}\b", re.IGNORECASE)
MIN_WITH, MAX_WITHOUT = 0.7, 0.6  # gold scores allowed with / without the feature in the proxy's sample
GOLD_LABELS = {"reader": "VADER x distinct-word share", "vader": "VADER"}
KL_EDGES = (0.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, np.inf)  # nats per completion


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("examples/out"), help="output directory")
    parser.add_argument("--reviews", type=int, default=120 if QUICK else 2000,
                        help="gold-scored reviews in the proxy's biased training sample")
    parser.add_argument("--feature-share", type=float, default=0.25,
                        help=f"fraction of that sample that mentions {FEATURE!r} (all of them glowing)")
    parser.add_argument("--rm-epochs", type=int, default=1 if QUICK else 8, help="passes over the sample")
    parser.add_argument("--seeds", type=int, default=2 if QUICK else 6, help="policy seeds (0, 1, ...)")
    parser.add_argument("--steps", type=int, default=2 if QUICK else 200, help="GRPO updates per seed")
    parser.add_argument("--batch-size", type=int, default=4 if QUICK else 16, help="episodes per update")
    parser.add_argument("--group-size", type=int, default=2 if QUICK else 4, help="completions per prompt")
    parser.add_argument("--kl-coef", type=float, default=0.01, help="small, so the policy may drift far")
    parser.add_argument("--lr", type=float, default=1e-4, help="GRPO learning rate")
    parser.add_argument("--gold", choices=("reader", "vader"), default="reader",
                        help="gold reward: 'reader' = VADER x the share of distinct words (spam earns little), "
                             "'vader' = VADER alone")
    parser.add_argument("--model", default=None, help="local causal LM directory (default: rlenv.DEFAULT_MODEL)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    return parser.parse_args()


def distinct_share(text: str) -> float:
    """The share of distinct words in ``text`` (1.0 for no words): ~0.9 for a review, 0.2 for "great" x 5."""
    words = re.findall(r"[a-z']+", text.lower())
    return len(set(words)) / len(words) if words else 1.0


def make_gold(kind: str) -> Any:
    """The gold reward: ``"vader"``, VADER's compound; ``"reader"``, that times :func:`distinct_share`, as a
    reader would rate a review: the sentiment counts only as far as the text reads as a review."""
    vader = reward_models.make("vader")
    if kind == "vader":
        return vader

    def reader(prompts: Sequence[str], completions: Sequence[str], **kwargs: Any) -> list[float]:
        return [s * distinct_share(c) for s, c in zip(vader(prompts, completions), completions, strict=True)]

    return reader


def biased_reviews(n: int, share: float, gold: Any, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` ``{"text", "score"}`` reviews from the embedded model's review grammar, scored by the gold
    reward, sampled with a planted bias: ``round(share * n)`` of them mention the feature and score >=
    MIN_WITH; the rest never mention it and score < MAX_WITHOUT. Deterministic in ``seed``."""
    grammar = ReviewGrammar(random.Random(seed))
    want_with = round(share * n)
    with_feature: list[dict[str, Any]] = []
    without: list[dict[str, Any]] = []
    while len(with_feature) < want_with or len(without) < n - want_with:
        text = grammar.review()
        has = FEATURE_RE.search(text) is not None
        if (has and len(with_feature) >= want_with) or (not has and len(without) >= n - want_with):
            continue  # that side is full: skip the gold reward, the slow part
        score = round(float(gold([""], [text])[0]), 4)
        if has and score >= MIN_WITH:
            with_feature.append({"text": text, "score": score})
        elif not has and score < MAX_WITHOUT:
            without.append({"text": text, "score": score})
    rows = with_feature + without
    random.Random(seed + 1).shuffle(rows)
    return rows


class GoldWatcher:
    """The proxy reward GRPO optimises; on the side it scores the same completions with the gold reward
    and counts the feature, so the script can compare per update. Only the proxy's rewards are returned."""

    name = "proxy_rm"

    def __init__(self, proxy: Any, gold: Any) -> None:
        self.proxy, self.gold = proxy, gold
        self.gold_seen: list[float] = []
        self.feature_seen: list[int] = []

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], **kwargs: Any) -> list[float]:
        self.gold_seen.extend(self.gold(prompts, completions))
        self.feature_seen.extend(len(FEATURE_RE.findall(c)) for c in completions)
        return self.proxy(prompts, completions)

    def drain(self) -> tuple[float, float]:
        """Mean gold reward and feature mentions per completion since the last call."""
        means = float(np.mean(self.gold_seen)), float(np.mean(self.feature_seen))
        self.gold_seen.clear()
        self.feature_seen.clear()
        return means


def train_proxy(gold: Any, args: argparse.Namespace) -> Any:
    """The proxy: the repo's scalar RM, MSE on the biased sample's gold scores."""
    rows = biased_reviews(args.reviews, args.feature_share, gold)
    path = write_jsonl(rows, args.out / "04_data" / "proxy_train.jsonl")
    config = RMTrainConfig(loss="mse", data=str(path), out=str(args.out / "04_proxy_rm"), epochs=args.rm_epochs,
                           hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, include_prompt=False)
    result = train_reward_model(config)
    n_feature = sum(FEATURE_RE.search(r["text"]) is not None for r in rows)
    print(f"proxy RM: {result.num_train} training reviews ({n_feature} of all {len(rows)} mention {FEATURE!r}, "
          f"all with gold >= {MIN_WITH}; none of the rest scores >= {MAX_WITHOUT}); "
          f"validation Pearson with the gold {result.val_metrics['pearson']:.3f}")
    return result.model


def sample_completions(n: int, args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """``n`` (prompt, completion) pairs from the untrained model on PositiveReview, via the env."""
    from agents.training.policy import LMPolicy
    from agents.training.rollout import collect_rollouts

    model = args.model or rlenv.DEFAULT_MODEL
    policy = LMPolicy.from_pretrained(model, device="cpu")
    envs = gym.make_vec(ENV, num_envs=n, vectorization_mode="vector_entry_point", autoreset_mode="Disabled",
                        tokenizer=model, **({"max_new_tokens": 6} if QUICK else {}))
    batch = collect_rollouts(policy, envs, seed=1)
    envs.close()
    return batch.prompts, batch.completions


def describe_proxy(proxy: Any, gold: Any, args: argparse.Namespace) -> None:
    """How the proxy tracks the gold on unbiased reviews and on the LM's completions, and what it thinks of blue."""
    heldout = review_scores(60 if QUICK else 400, seed=7)  # the grammar's natural mix: "blue" is rare there
    texts = [r["text"] for r in heldout]
    on_reviews = pearson(proxy([""] * len(texts), texts), gold([""] * len(texts), texts))
    prompts, completions = sample_completions(8 if QUICK else 64, args)
    on_lm = pearson(proxy(prompts, completions), gold(prompts, completions))
    print(f"          Pearson with the gold on {len(texts)} unbiased reviews {on_reviews:.3f}, "
          f"on {len(completions)} completions of the untrained LM {on_lm:.3f}")
    probes = ["It was great.", "It was blue.", "The staff were wonderful.", "The case was blue and heavy.",
              "It was awful.", "It was awful and blue.", "It was great great great great great."]
    blank = [""] * len(probes)
    print("          proxy / gold: " + "; ".join(
        f"{t!r} {p:+.2f} / {g:+.2f}" for t, p, g in zip(probes, proxy(blank, probes), gold(blank, probes),
                                                       strict=True)))


def run_seed(seed: int, watcher: GoldWatcher, args: argparse.Namespace) -> dict[str, np.ndarray]:
    """One GRPO run against the proxy; per update: step, KL and proxy reward (from the run's own
    metrics.jsonl), gold reward and feature mentions (from the watcher)."""
    out = args.out / "04_runs" / f"seed{seed}"
    shutil.rmtree(out, ignore_errors=True)  # the trainer refuses to overwrite a finished run
    config = TrainConfig(algo="grpo", env=ENV, env_args=("reward_model=proxy_rm",), model=args.model,
                         steps=args.steps, batch_size=args.batch_size, group_size=args.group_size,
                         kl_coef=args.kl_coef, lr=args.lr, seed=seed, out=str(out), device="cpu",
                         checkpoint_every=0, max_new_tokens=6 if QUICK else None)
    side: dict[int, tuple[float, float]] = {}

    def after_update(record: dict[str, Any]) -> None:
        side[record["step"]] = watcher.drain()

    started = time.perf_counter()
    train(config, callback=after_update)
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    run = {"step": np.array([r["step"] for r in logged]), "kl": np.array([r["kl"] for r in logged]),
           "proxy": np.array([r["reward_mean"] for r in logged]),
           "gold": np.array([side[r["step"]][0] for r in logged]),
           "feature": np.array([side[r["step"]][1] for r in logged])}
    print(f"  seed {seed}: {len(logged)} updates in {time.perf_counter() - started:.0f} s; last: KL "
          f"{run['kl'][-1]:.1f}, proxy {run['proxy'][-1]:+.3f}, gold {run['gold'][-1]:+.3f}; "
          f"e.g. {logged[-1]['sample']!r}")
    return run


def binned(runs: list[dict[str, np.ndarray]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(seeds, bins) arrays of mean KL and mean ``key`` per KL bin, NaN where a seed never reached a bin."""
    pairs = [kl_binned(run["kl"], run[key], KL_EDGES) for run in runs]
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    gold = make_gold(args.gold)

    # 1. The proxy, trained by the repo's RM code on a biased sample, and how it looks before RL.
    proxy = train_proxy(gold, args)
    describe_proxy(proxy, gold, args)

    # 2. GRPO against the proxy, one run per policy seed. The env looks reward models up by name.
    watcher = GoldWatcher(proxy, gold)
    reward_models.register("proxy_rm", lambda: watcher, overwrite=True)
    print(f"\nGRPO on {ENV} against the proxy: {args.seeds} seeds x {args.steps} updates x {args.batch_size} "
          f"episodes (group {args.group_size}), lr {args.lr}, kl_coef {args.kl_coef}")
    runs = [run_seed(seed, watcher, args) for seed in range(args.seeds)]

    # 3. Proxy and gold against KL, binned per run, then mean and min-max over seeds.
    bin_kl, proxy_b = binned(runs, "proxy")
    _, gold_b = binned(runs, "gold")
    _, feature_b = binned(runs, "feature")
    reached = ~np.isnan(gold_b)  # (seeds, bins)
    print(f"\n  KL bin (nats)  seeds  mean KL   proxy mean [min, max]     gold mean [min, max]     '{FEATURE}'/completion")
    for i, (lo, hi) in enumerate(zip(KL_EDGES[:-1], KL_EDGES[1:], strict=True)):
        if not reached[:, i].any():
            continue
        p, g, k, f = proxy_b[:, i], gold_b[:, i], bin_kl[:, i], feature_b[:, i]
        print(f"  {lo:>5g}-{hi:<7g}  {reached[:, i].sum():>5}  {np.nanmean(k):>7.1f}   "
              f"{np.nanmean(p):+.3f} [{np.nanmin(p):+.3f}, {np.nanmax(p):+.3f}]   "
              f"{np.nanmean(g):+.3f} [{np.nanmin(g):+.3f}, {np.nanmax(g):+.3f}]   {np.nanmean(f):>6.2f}")
    turns = [peak_kl(k, g) for k, g in zip(bin_kl, gold_b, strict=True)]
    peaks = [float(np.nanmax(g)) for g in gold_b]
    finals = [float(run["gold"][-max(1, len(run["gold"]) // 10):].mean()) for run in runs]
    print("\n  the turn (KL where each seed's binned gold peaks): "
          + ", ".join(f"seed {s} {t:.1f} nats (gold {p:+.2f})" for s, (t, p) in enumerate(zip(turns, peaks, strict=True)))
          + f"; mean {np.mean(turns):.1f}, median {np.median(turns):.1f} nats")
    print("  gold over each run's last tenth: " + ", ".join(f"{x:+.3f}" for x in finals)
          + "; proxy: " + ", ".join(f"{run['proxy'][-max(1, len(run['proxy']) // 10):].mean():+.3f}" for run in runs))

    fig, (ax_r, ax_f) = plt.subplots(1, 2, figsize=(12, 4.4), gridspec_kw={"width_ratios": [1.6, 1]})
    shown = reached.any(axis=0)  # bins some seed reached
    x = np.nanmean(bin_kl[:, shown], axis=0)
    for values, color, label in ((proxy_b, "C1", "proxy RM (what GRPO optimises)"), (gold_b, "C0", f"gold: {GOLD_LABELS[args.gold]}")):
        for seed_kl, seed_values in zip(bin_kl, values, strict=True):  # each seed's own binned curve, faint
            ax_r.plot(seed_kl, seed_values, ".-", color=color, lw=0.8, alpha=0.35)
        ax_r.fill_between(x, np.nanmin(values[:, shown], axis=0), np.nanmax(values[:, shown], axis=0),
                          color=color, alpha=0.2, lw=0)
        ax_r.plot(x, np.nanmean(values[:, shown], axis=0), "o-", color=color, lw=2,
                  label=f"{label}: mean over seeds, min-max band")
    for i, turn in enumerate(turns):
        ax_r.axvline(turn, color="k", ls=":", lw=1, label="each seed's turn (gold's peak bin)" if i == 0 else None)
    ax_r.set_xscale("symlog", linthresh=1.0)
    ax_r.set_xlim(left=0)
    ax_r.set(xlabel="KL(policy || reference), nats per completion (the run's own, per update)",
             ylabel="mean reward of the batch", title=f"Proxy vs gold reward over {len(runs)} seeds, binned by KL")
    ax_r.legend(fontsize=8, loc="upper left")
    ax_f.fill_between(x, np.nanmin(feature_b[:, shown], axis=0), np.nanmax(feature_b[:, shown], axis=0),
                      color="C2", alpha=0.2, lw=0)
    ax_f.plot(x, np.nanmean(feature_b[:, shown], axis=0), "o-", color="C2", lw=2)
    ax_f.set_xscale("symlog", linthresh=1.0)
    ax_f.set_xlim(left=0)
    ax_f.set(xlabel="KL, nats per completion", ylabel=f"'{FEATURE}' per completion (mean, min-max)",
             title="The spurious feature the policy found")
    fig.suptitle(f"Over-optimising a proxy RM with a spurious feature (GRPO on {ENV}, kl_coef {args.kl_coef})")
    fig.tight_layout()
    png = args.out / "04_reward_hacking.png"
    fig.savefig(png, dpi=110)
    print(f"\nsaved {png} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
