"""summary.md, summary.json and plots of a finished benchmark grid (see :mod:`agents.benchmarking.bench_stats`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from agents.benchmarking import bench_stats
from rlenv.tasks import TASK_CEILINGS

logger = logging.getLogger(__name__)

PLOTS = ("aggregates.png", "curves.png", "profiles.png", "reward_vs_kl.png")


def task_ceiling(env: str) -> float:
    return TASK_CEILINGS.get(env, 1.0)


def _matrix(
    rows: list[dict[str, Any]], algo: str, envs: list[str], value: Callable[[dict[str, Any]], float]
) -> np.ndarray:
    """(seeds, tasks) matrix of ``value(row)`` for one algorithm, seeds sorted."""
    columns = []
    for env in envs:
        runs = sorted((r for r in rows if r["algo"] == algo and r["env"] == env), key=lambda r: r["seed"])
        columns.append([value(r) for r in runs])
    if len({len(c) for c in columns}) != 1:
        raise ValueError(
            f"{algo}: tasks have different numbers of finished seeds; finish the grid (--resume)"
        )
    return np.array(columns, dtype=float).T


def _matched(evals: list[dict[str, Any]], budget: float) -> dict[str, Any]:
    """The last evaluation whose KL is within the budget (step 0, KL 0, always is)."""
    within = [e for e in evals if (e.get("kl") or 0.0) <= budget]
    return within[-1]


def write_report(rows: list[dict[str, Any]], bench: Any) -> dict[str, Any]:
    out = Path(bench.out)
    algos = [a for a in bench.algos if any(r["algo"] == a for r in rows)]
    envs = [e for e in bench.envs if any(r["env"] == e for r in rows)]
    untrained = {
        e: float(np.mean([r["evals"][0]["reward_mean"] for r in rows if r["env"] == e])) for e in envs
    }
    # the user's own reward (reward_funcs) has its own ceiling; a task's built-in reward, the task's
    ceilings = {e: bench.reward_ceiling if bench.reward_funcs else task_ceiling(e) for e in envs}

    def norm(env: str, score: float) -> float:
        return float(bench_stats.normalise(np.array(score), untrained[env], ceilings[env]))

    final = {
        a: _matrix(rows, a, envs, lambda r: norm(r["env"], r["evals"][-1]["reward_mean"])) for a in algos
    }
    matched = {
        a: _matrix(
            rows, a, envs, lambda r: norm(r["env"], _matched(r["evals"], bench.kl_budget)["reward_mean"])
        )
        for a in algos
    }
    aggregates = {
        a: {name: bench_stats.interval(final[a], fn) for name, fn in bench_stats.AGGREGATES.items()}
        for a in algos
    }
    matched_iqm = {a: bench_stats.interval(matched[a], bench_stats.iqm) for a in algos}
    improvement = {
        f"{x} > {y}": bench_stats.probability_of_improvement_interval(final[x], final[y])
        for x in algos
        for y in algos
        if x != y
    }
    everything = np.concatenate([final[a].ravel() for a in algos])
    taus = np.linspace(min(0.0, float(everything.min())), max(1.0, float(everything.max())), 41)
    profiles = {a: bench_stats.performance_profile(final[a], taus).tolist() for a in algos}
    per_task = {
        e: {
            "untrained": untrained[e],
            "ceiling": ceilings[e],
            **{a: _task_summary([r for r in rows if r["algo"] == a and r["env"] == e]) for a in algos},
        }
        for e in envs
    }
    summary = {
        "warnings": too_few_runs({a: final[a].shape[0] for a in algos}),
        # out: the grid directory is where this file sits; its path as given would publish the machine's
        "bench": {**json.loads(json.dumps(asdict(bench), default=str)), "out": "."},
        "protocol": {
            "split": "heldout",
            "episodes": bench.eval_episodes,
            "greedy": bench.eval_greedy,
            "eval_every": bench.eval_every,
            "normalisation": "(score - untrained) / (ceiling - untrained)",
            "intervals": "95% stratified bootstrap (scipy.stats.bootstrap, percentile, 2000 resamples)",
        },
        "aggregates": aggregates,
        "matched_kl": {"budget": bench.kl_budget, "iqm": matched_iqm},
        "probability_of_improvement": improvement,
        "performance_profiles": {"tau": taus.tolist(), **profiles},
        "per_task": per_task,
        "cost": {
            "cells": len(rows),
            "wall_s": round(sum(r["wall_s"] for r in rows), 1),
            "train_s": round(sum(r["train_s"] for r in rows), 1),
        },
        "runs": [{k: v for k, v in r.items()} for r in rows],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "summary.md").write_text(_markdown(summary, algos, envs))
    _plots(out, rows, algos, envs, final, aggregates, taus, profiles, norm)
    return summary


MIN_RUNS_FOR_INTERVALS = 5
"""runs per task a 95% bootstrap interval needs: n runs have C(2n-1, n) distinct resamples, and the
2.5% tails fall between them only when there are more than 40 (n = 4: 35, each 2.9% of the mass;
n = 5: 126), so with fewer an interval edge sits on a resample that may be the point estimate itself"""


def too_few_runs(runs_per_task: dict[str, int]) -> list[str]:
    """One warning per algorithm with fewer than :data:`MIN_RUNS_FOR_INTERVALS` runs per task."""
    return [
        f"{algo}: only {n} run(s) per task; its 95% intervals are unreliable with fewer than "
        f"{MIN_RUNS_FOR_INTERVALS} (an interval's edge can sit on the point estimate); add seeds (--seeds) "
        "and rerun with --resume"
        for algo, n in runs_per_task.items()
        if n < MIN_RUNS_FOR_INTERVALS
    ]


def _task_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    scores = [r["evals"][-1]["reward_mean"] for r in runs]
    kls = [r["evals"][-1]["kl"] for r in runs]
    return {
        "final_mean": float(np.mean(scores)),
        "final_std": float(np.std(scores)),
        "kl_mean": float(np.mean(kls)),
        "seeds": len(runs),
    }


def _ci(t: tuple[float, float, float]) -> str:
    return f"{t[0]:.3f} [{t[1]:.3f}, {t[2]:.3f}]"


def _markdown(s: dict[str, Any], algos: list[str], envs: list[str]) -> str:
    b, p = s["bench"], s["protocol"]
    lines = [
        "# rlenv bench summary",
        "",
        f"{len(algos)} algorithms x {len(envs)} tasks x {len(b['seeds'])} seeds; {b['steps']} updates of "
        f"{b['batch_size']} episodes per cell; held-out evaluation of {p['episodes']} episodes "
        f"({'greedy' if p['greedy'] else 'sampled'}) every {p['eval_every']} updates. "
        f"Cost: {s['cost']['wall_s']:.0f} s of cell wall time in all.",
        "",
        "Normalised held-out score: 0 = untrained model, 1 = the task's ceiling. "
        f"Point estimate [{p['intervals']}].",
        "",
        *[f"> **Warning** — {w}" for w in s["warnings"]],
        *([""] if s["warnings"] else []),
        "| algorithm | IQM | mean | median | IQM at KL <= " + f"{s['matched_kl']['budget']:g} nats |",
        "|---|---|---|---|---|",
    ]
    for a in algos:
        ag = s["aggregates"][a]
        lines.append(
            f"| {a} | {_ci(ag['iqm'])} | {_ci(ag['mean'])} | {_ci(ag['median'])} | "
            f"{_ci(s['matched_kl']['iqm'][a])} |"
        )
    lines += [
        "",
        "Probability of improvement P(row > column):",
        "",
        "| | " + " | ".join(algos) + " |",
        "|---" * (len(algos) + 1) + "|",
    ]
    for x in algos:
        cells = ["-" if x == y else _ci(s["probability_of_improvement"][f"{x} > {y}"]) for y in algos]
        lines.append(f"| {x} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Raw held-out score at the last evaluation (mean ± sd over seeds; KL to the reference in nats):",
        "",
        "| task | untrained | ceiling | " + " | ".join(algos) + " |",
        "|---" * (len(algos) + 3) + "|",
    ]
    for e in envs:
        t = s["per_task"][e]
        cells = [
            f"{t[a]['final_mean']:+.3f} ± {t[a]['final_std']:.3f} (kl {t[a]['kl_mean']:.2f})" for a in algos
        ]
        lines.append(f"| {e} | {t['untrained']:+.3f} | {t['ceiling']:g} | " + " | ".join(cells) + " |")
    lines += ["", "Plots: " + ", ".join(f"[{name}]({name})" for name in PLOTS), ""]
    return "\n".join(lines)


def _plots(
    out: Path,
    rows: list[dict[str, Any]],
    algos: list[str],
    envs: list[str],
    final: dict[str, np.ndarray],
    aggregates: dict[str, Any],
    taus: np.ndarray,
    profiles: dict[str, list[float]],
    norm: Callable[[str, float], float],
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {a: f"C{i}" for i, a in enumerate(algos)}
    # aggregate intervals
    fig, axes = plt.subplots(1, 3, figsize=(10, 0.6 + 0.5 * len(algos)), sharey=True)
    for ax, name in zip(axes, ("iqm", "mean", "median"), strict=True):
        for i, a in enumerate(algos):
            point, low, high = aggregates[a][name]
            ax.plot([low, high], [i, i], color=colors[a], lw=6, alpha=0.5, solid_capstyle="butt")
            ax.plot([point], [i], "|", color="k", ms=14)
        ax.set_title(name.upper() if name == "iqm" else name.capitalize())
        ax.set_xlabel("normalised held-out score")
    axes[0].set_yticks(range(len(algos)), algos)
    fig.tight_layout()
    fig.savefig(out / PLOTS[0], dpi=110)
    plt.close(fig)
    # held-out score curves with 95% bootstrap bands over seeds
    fig, axes = plt.subplots(1, len(envs), figsize=(4 * len(envs), 3.2), squeeze=False)
    for ax, env in zip(axes[0], envs, strict=True):
        for a in algos:
            runs = [r for r in rows if r["algo"] == a and r["env"] == env]
            steps = [e["step"] for e in runs[0]["evals"]]
            bands = [
                bench_stats.mean_interval([r["evals"][k]["reward_mean"] for r in runs])
                for k in range(len(steps))
            ]
            ax.plot(steps, [b[0] for b in bands], color=colors[a], label=a)
            ax.fill_between(steps, [b[1] for b in bands], [b[2] for b in bands], color=colors[a], alpha=0.2)
        ax.set_title(env.split("/")[-1], fontsize=9)
        ax.set_xlabel("update")
    axes[0][0].set_ylabel("held-out reward")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / PLOTS[1], dpi=110)
    plt.close(fig)
    # performance profiles
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for a in algos:
        ax.plot(taus, profiles[a], color=colors[a], label=a)
    ax.set_xlabel(r"normalised score $\tau$")
    ax.set_ylabel(r"fraction of runs with score > $\tau$")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / PLOTS[2], dpi=110)
    plt.close(fig)
    # normalised reward vs KL, every evaluation of every run
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for a in algos:
        pts = [
            (e["kl"] or 0.0, norm(r["env"], e["reward_mean"]))
            for r in rows
            if r["algo"] == a
            for e in r["evals"]
        ]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=10, color=colors[a], alpha=0.6, label=a)
    ax.set_xlabel("KL to the reference (nats per episode)")
    ax.set_ylabel("normalised held-out score")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / PLOTS[3], dpi=110)
    plt.close(fig)
