"""The one training loop every algorithm shares (the algorithms themselves live in agents/algorithms/).

    for step in 1..N (or until the time budget):
        batch  = collect_rollouts(policy, envs)          # the env drives generation
        stats  = algorithm.update(batch, rewards)        # the only part that differs per algorithm
        log one JSON line; checkpoint every K updates

Reproducibility: the seed fixes the initial weights (value head, LoRA), and each update's rollout is
seeded from ``(seed, step)`` — prompts drawn by the env and tokens sampled by the policy — so the
same seed gives the same loss curve on CPU, and a resumed run needs only the step number to redraw
the exact batches it would have seen. The remaining state (weights, optimizer, KL controller,
baselines, the minibatch-shuffling generator, global RNGs) lives in the checkpoint.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import rlenv
from agents.algorithms import algorithm_class
from agents.errors import ConfigError, TrainingDivergedError, built_from_user_input
from agents.training.checkpoint import (
    CHECKPOINTS_DIR,
    list_checkpoints,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from agents.training.config import TrainConfig, config_differences, env_label
from agents.training.distributed import Ranks, current_ranks, reduce_stats, weights_sha256
from agents.training.env_factory import vector_env_from_factory
from agents.training.evaluation import HeldoutEvaluator, score_rollouts
from agents.training.policy import LMPolicy, SamplingConfig
from agents.training.rollout import RolloutBatch, collect_rollouts
from agents.training.run_log import (
    CURVE_FILE,
    METRICS_FILE,
    RunLog,
    plot_curves,
    read_metrics,
    truncate_metrics,
)
from rlenv import DEFAULT_MODEL

logger = logging.getLogger(__name__)


# ---- the loop ------------------------------------------------------------------------------------
@dataclass
class TrainResult:
    out: Path
    step: int
    episodes: int
    elapsed_s: float
    checkpoint: Path | None
    metrics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def final(self) -> dict[str, Any]:
        return self.metrics[-1] if self.metrics else {}


def rollout_seed(seed: int, step: int, attempt: int = 0) -> int:
    """A well-mixed 32-bit seed for update ``step`` (the env seeds sub-env i with seed + i, so
    consecutive integers would make neighbouring updates share prompts); ``attempt`` > 0 seeds the
    extra rollouts of dynamic sampling."""
    entropy = [seed, step] if attempt == 0 else [seed, step, attempt]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16}
"""--precision / --rollout-precision / --reference-precision -> the autocast dtype (None: fp32)"""


def precision_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``--precision`` on ``device``: ``auto`` is bf16 on a CUDA device with
    bf16 support (TRL's default there) and fp32 elsewhere: on a CPU bf16 changes the numbers, so it
    is opt-in."""
    if precision == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else None
    return AUTOCAST_DTYPES[precision]


def rollout_options(config: TrainConfig) -> dict[str, Any]:
    """The work-saving options of :func:`collect_rollouts` that ``config`` asks for."""
    dtype = "policy" if config.rollout_precision is None else AUTOCAST_DTYPES[config.rollout_precision]
    return {
        "cache": config.rollout_cache,
        "share_prompt_prefill": config.shared_prefill,
        "autocast_dtype": dtype,
    }


def default_threads(processes: int = 1) -> int:
    """Torch threads of a run that leaves ``--threads`` unset: torch's own count, but never every CPU the
    process may use (at least one is left to the rest of the machine) nor more than its share of them
    when ``processes`` ranks run on one machine. A ``$OMP_NUM_THREADS`` in the environment is the
    user's own choice: torch's count (which it set) is kept as it is.

    With as many threads as CPUs, every parallel region waits for its slowest thread, and one other busy
    process on the machine holds a thread back on every region: on the 2-core reference machine the
    README's main command then ran 6% of its idle rate with two threads, and 97% with one (one torch
    thread is 0.59x as fast as two when the machine is idle; docs/speed.md, benchmarks/thread_policy.py).
    """
    if os.environ.get("OMP_NUM_THREADS", "").strip():
        return torch.get_num_threads()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(torch.get_num_threads(), cpus // max(1, processes), cpus - 1))


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_envs(config: TrainConfig, tokenizer_path: str) -> Any:
    """The synchronous vector env of ``batch_size`` sub-envs, in the policy's tokenizer."""
    if callable(config.env):
        return vector_env_from_factory(config.env, config.batch_size, config.max_new_tokens, tokenizer_path)
    check_trainable_env_id(config.env)
    info = next((i for i in rlenv.envs() if i.id == config.env), None)
    if info is not None and not info.for_lm:
        raise ConfigError(
            f"{config.env} is a toy for policies without a language model ({info.summary}); an LM policy cannot "
            f"act in its vocabulary and would train at reward 0. Train it with stock Stable-Baselines3, e.g. "
            f"PPO('MultiInputPolicy', gym.make({config.env!r})), or pick an LM task from `rlenv envs`"
        )
    kwargs = config.env_kwargs()
    if config.max_new_tokens is not None:
        kwargs["max_new_tokens"] = config.max_new_tokens
    with built_from_user_input(f"cannot build {config.env} from its arguments"):
        return gym.make_vec(
            config.env,
            num_envs=config.batch_size,
            vectorization_mode="vector_entry_point",
            autoreset_mode="Disabled",
            tokenizer=tokenizer_path,
            **kwargs,
        )


def check_trainable_env_id(env_id: str) -> None:
    """``env_id`` is registered; a run trained on a Python env factory says how to resume it instead."""
    if env_id.startswith("factory:"):
        raise ConfigError(
            f"this run trained on an env factory from Python ({env_id[len('factory:') :]}), which the command line "
            "cannot rebuild; resume it from Python: train(TrainConfig(env=<the same factory>, ..., resume=RUN_DIR))"
        )
    rlenv.check_env_id(env_id)


class Trainer:
    """Builds policy, reference, env and algorithm from a :class:`TrainConfig` and runs the loop.

    ``callback(record)`` is called after every update with the logged record (the CLI's progress bar).
    """

    def __init__(
        self,
        config: TrainConfig,
        callback: Callable[[dict[str, Any]], None] | None = None,
        ranks: Ranks | None = None,
    ) -> None:
        self.config = config
        self.callback = callback
        self.ranks = ranks if ranks is not None else current_ranks()
        self.local_config = self._local_config(config, self.ranks)
        self.step = 0
        self.episodes = 0
        self.elapsed_offset = 0.0
        self.last_checkpoint: Path | None = None
        self._last_batch: RolloutBatch | None = None
        resume_state = self._prepare_resume() if config.resume else None
        self.out = self._out_dir(resume_state[0] if resume_state else None)
        self.ranks.barrier()  # every rank has checked the output directory before rank 0 writes to it
        self._build(resume_state)

    # ---- setup -------------------------------------------------------------------------------
    @staticmethod
    def _local_config(config: TrainConfig, ranks: Ranks) -> TrainConfig:
        """This rank's share of the work: batch and minibatch divided by the number of processes."""
        if not ranks.distributed:
            return config
        W, algo = ranks.world_size, algorithm_class(config.algo)
        unit = config.group_size if algo.uses_groups else 1
        if config.batch_size % (W * unit) or config.minibatch % W:
            what = f"{W} processes x groups of {unit}" if unit > 1 else f"{W} processes"
            raise ConfigError(
                f"--batch-size {config.batch_size} (and --minibatch-size {config.minibatch}) must split evenly "
                f"over {what}; use a --batch-size that is a multiple of {W * unit}"
            )
        minibatch = None if config.minibatch_size is None else config.minibatch_size // W
        return replace(config, batch_size=config.batch_size // W, minibatch_size=minibatch)

    def _prepare_resume(self) -> tuple[Path, dict[str, Any]]:
        assert self.config.resume is not None  # only called when resuming
        ckpt, state, saved = load_checkpoint(self.config.resume)
        saved_world = int(state.get("world_size", 1))
        if saved_world != self.ranks.world_size:
            raise ConfigError(
                f"{ckpt} was written by a run of {saved_world} process(es) and this one has {self.ranks.world_size}; "
                f"resume with the same number (accelerate launch --num_processes {saved_world}) to continue exactly"
            )
        diffs = config_differences(saved, self.config)
        if diffs:
            raise ConfigError(
                f"cannot resume from {ckpt} with a different config: {'; '.join(diffs)}. Pass the same flags "
                f"as the original run (saved in {ckpt}/train_config.json) or start a new run without --resume"
            )
        return ckpt, state

    def _out_dir(self, resume_checkpoint: Path | None) -> Path:
        if self.config.out is None and resume_checkpoint is not None:
            return resume_checkpoint.parent.parent  # run/checkpoints/step_N -> run
        out = Path(self.config.out_dir)
        if not self.config.resume and (list_checkpoints(out) or (out / METRICS_FILE).exists()):
            raise ConfigError(
                f"{out} already holds a run; continue it with --resume {out}, or pass a new --out directory"
            )
        return out

    def _build(self, resume: tuple[Path, dict[str, Any]] | None) -> None:
        config = self.config
        if not callable(config.env):
            check_trainable_env_id(config.env)  # a typo fails here, before any model is loaded
        torch.set_num_threads(config.threads or default_threads(self.ranks.world_size))
        seed_everything(config.seed)  # the same on every rank: identical value-head / LoRA init
        model_path = config.model or DEFAULT_MODEL
        device = (
            self.ranks.device if self.ranks.device is not None and config.device != "cpu" else config.device
        )
        algo_cls = algorithm_class(config.algo)
        assert config.temperature is not None  # resolved when the config was built
        sampling = SamplingConfig(config.temperature, config.top_k, config.top_p)
        start_from = resume[0] if resume else model_path
        with built_from_user_input(f"cannot load the model in {start_from}"):
            self.policy = LMPolicy.from_pretrained(
                start_from,
                value_head=algo_cls.value_head,
                lora_rank=config.lora_rank,
                device=device,
                sampling=sampling,
            )
        self.policy.autocast_dtype = precision_dtype(config.precision, self.policy.device)
        self.policy.shared_scoring = config.shared_scoring
        reference = None
        if algo_cls.needs_reference(config):
            if resume and not self.policy.is_lora:
                # the reference is the *initial* model, not the checkpoint
                initial = LMPolicy.from_pretrained(model_path, device=device, sampling=sampling)
                initial.autocast_dtype = self.policy.autocast_dtype
                reference = initial.reference()
            else:
                reference = self.policy.reference()
            if config.reference_precision is not None:
                reference.autocast_dtype = AUTOCAST_DTYPES[config.reference_precision]
            reference.shared_scoring = config.shared_scoring
        self.envs = make_envs(self.local_config, model_path)
        self.algorithm = algo_cls(self.policy, self.local_config, reference, ranks=self.ranks)
        self.evaluator = None
        # held-out scores logged as eval/... keys (agents.training.evaluation)
        if config.eval_every and self.ranks.is_main:
            self.evaluator = HeldoutEvaluator(config, self.policy, reference, model_path)
        if resume:
            ckpt, state = resume
            self.algorithm.load_state_dict(state["algorithm"])
            set_rng_state(state["rng"])
            self.step, self.episodes = int(state["step"]), int(state["episodes"])
            self.elapsed_offset = float(state["elapsed_s"])
            self.last_checkpoint = ckpt
            self._carry_metrics(ckpt.parent.parent)
        logger.info(
            "training %s on %s from %s (step %d, rank %d of %d, %d torch threads) -> %s",
            config.algo,
            config.env,
            start_from,
            self.step,
            self.ranks.rank,
            self.ranks.world_size,
            torch.get_num_threads(),
            self.out,
        )

    def _carry_metrics(self, source_run: Path) -> None:
        """Cut metrics back to the checkpoint (the updates after it will be redone)."""
        if not self.ranks.is_main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        target = self.out / METRICS_FILE
        if source_run.resolve() != self.out.resolve() and (source_run / METRICS_FILE).exists():
            shutil.copyfile(source_run / METRICS_FILE, target)
        if target.exists():
            truncate_metrics(target, self.step)

    # ---- the loop ----------------------------------------------------------------------------
    def done(self, elapsed: float) -> bool:
        """Whether to stop before the next update; all ranks agree (a time budget is read per rank)."""
        config = self.config
        if config.steps is not None and self.step >= config.steps:
            return True
        return self.ranks.any(config.time_budget is not None and elapsed >= config.time_budget)

    def run(self) -> TrainResult:
        config = self.config
        main = self.ranks.is_main
        log = RunLog(self.out, trackers=config.trackers, config=config.to_dict()) if main else None
        start = time.perf_counter()
        try:
            # the budget is checked against the time at the end of the last update (the elapsed_s it
            # logs), so the update that crosses it is the last one and its record shows the crossing
            finished_at = self.elapsed_offset
            while not self.done(finished_at):
                record = self._one_update(start)
                finished_at = record["elapsed_s"]
                if self.evaluator is not None and self.step % config.eval_every == 0:
                    record.update(self.evaluator())
                if log is not None:
                    log.log(record)
                if config.checkpoint_every and self.step % config.checkpoint_every == 0:
                    self._save(record["elapsed_s"])
                if self.callback is not None:
                    self.callback(record)
            if self.last_checkpoint is None or not self.last_checkpoint.name.endswith(f"{self.step:06d}"):
                self._save(self.elapsed_offset + time.perf_counter() - start)
        except TrainingDivergedError as err:
            kept = (
                f"the last good checkpoint is {self.last_checkpoint}"
                if self.last_checkpoint
                else "no checkpoint had been saved yet (lower --checkpoint-every to keep more)"
            )
            raise TrainingDivergedError(
                f"training stopped at update {self.step + 1}: {err}; {kept}. Lower --lr (now {config.lr:g}) "
                f"or --max-grad-norm, then --resume from that checkpoint with the same flags"
            ) from None
        finally:
            self.envs.close()
            if self.evaluator is not None:
                self.evaluator.close()
            records = []
            if log is not None:
                records = read_metrics(self.out)  # every record is flushed as it is logged
                plot_curves(
                    records,
                    self.out / CURVE_FILE,
                    title=f"{config.algo} on {env_label(config.env)} (seed {config.seed})",
                )
                log.close(curve=self.out / CURVE_FILE)
        elapsed = self.elapsed_offset + time.perf_counter() - start
        return TrainResult(self.out, self.step, self.episodes, elapsed, self.last_checkpoint, records)

    def _one_update(self, start: float) -> dict[str, Any]:
        config, algo = self.config, self.algorithm
        t0 = time.perf_counter()
        try:
            # rank r's sub-env i is seeded like sub-env r * local + i of a one-process run
            def rollout(attempt: int) -> RolloutBatch:
                seed = (
                    rollout_seed(config.seed, self.step, attempt)
                    + self.ranks.rank * self.local_config.batch_size
                )
                return collect_rollouts(
                    self.policy, self.envs, seed=seed, options=algo.reset_options(), **rollout_options(config)
                )

            batch = algo.collect(rollout)
        except RuntimeError as err:
            # finite but huge weights can overflow to NaN logits, which sampling then chokes on
            if self._last_batch is not None and not self._policy_outputs_finite(self._last_batch):
                raise TrainingDivergedError(
                    "the policy's outputs are non-finite, so no token can be sampled"
                ) from err
            raise
        self._last_batch = batch
        t1 = time.perf_counter()
        stats = algo.update(batch, algo.episode_rewards(batch))
        if not math.isfinite(stats.get("loss", 0.0)):
            raise TrainingDivergedError(f"non-finite loss ({stats['loss']})")
        stats = reduce_stats(stats, self.ranks)
        self.step += 1
        self.episodes += config.batch_size
        record: dict[str, Any] = {
            "step": self.step,
            "episodes": self.episodes,
            **stats,
            "kl_coef": algo.kl_controller.value,
            "rollout_s": t1 - t0,
            "update_s": time.perf_counter() - t1,
            "elapsed_s": self.elapsed_offset + time.perf_counter() - start,
            "sample": (batch.prompts[0] + " | " + batch.completions[0])[:200],
        }
        if self.ranks.distributed:
            record["world_size"] = self.ranks.world_size
            record["rank_reward_means"] = self.ranks.gather(batch.rewards.float().mean().item())
        return record

    @torch.no_grad()
    def _policy_outputs_finite(self, batch: RolloutBatch) -> bool:
        scores = self.policy.score_sequences(
            batch.input_ids[:2], batch.attention_mask[:2], batch.prompt_length
        )
        return bool(torch.isfinite(scores.logprobs[batch.response_mask[:2].bool()]).all())

    def _save(self, elapsed: float) -> None:
        # the one check of the weights themselves (Algorithm.step leaves it out): never save a diverged model
        if not all(bool(torch.isfinite(p).all()) for p in self.policy.parameters()):
            raise TrainingDivergedError(f"update {self.step}'s optimizer steps made some weights non-finite")
        hashes = None  # one process has nothing to compare, so it does not hash its weights
        if self.ranks.distributed:
            hashes = self.ranks.gather(weights_sha256(self.policy))
            if len(set(hashes)) > 1:
                raise RuntimeError(
                    f"the ranks' weights differ at update {self.step} ({hashes}); this is a bug"
                )
            if not self.ranks.is_main:  # rank 0 writes it; the others only need to know where it is
                self.last_checkpoint = self.out / CHECKPOINTS_DIR / f"step_{self.step:06d}"
                return
        state = {
            "step": self.step,
            "episodes": self.episodes,
            "elapsed_s": float(elapsed),
            "algorithm": self.algorithm.state_dict(),
            "rng": rng_state(),
            "world_size": self.ranks.world_size,
        }
        if hashes is not None:
            state["weights_sha256"] = hashes  # one per rank: identical, or the run would have stopped
        saved_config = replace(self.config, resume=None)
        self.last_checkpoint = save_checkpoint(
            self.out, self.step, self.policy, state, saved_config, keep=self.config.keep_checkpoints
        )


def train(config: TrainConfig, callback: Callable[[dict[str, Any]], None] | None = None) -> TrainResult:
    """Run ``config`` to its step / time budget; see :class:`Trainer`."""
    return Trainer(config, callback).run()


def evaluate(
    policy: LMPolicy,
    envs: Any,
    episodes: int,
    *,
    seed: int = 0,
    group_size: int | None = None,
    num_samples: int = 2,
) -> dict[str, Any]:
    """Mean reward and episode statistics of ``policy`` over ``episodes`` rollouts (rounded up to whole
    batches of ``envs.num_envs``), each batch seeded from ``(seed, i)``; plus a few sample texts.
    (Benchmark scores use :func:`agents.training.evaluation.evaluate_policy`, the held-out protocol.)"""
    seeds = [rollout_seed(seed, 10**6 + i) for i in range(max(1, math.ceil(episodes / envs.num_envs)))]
    options = {"group_size": group_size} if group_size else None
    summary = score_rollouts(policy, envs, seeds, options=options, num_samples=num_samples)
    keys = ("episodes", "reward_mean", "reward_std", "length_mean", "eos_rate", "samples")
    return {k: summary[k] for k in keys}
