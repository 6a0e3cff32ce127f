"""The one training loop every algorithm shares, and the :class:`Algorithm` base they override.

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
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from agents.checkpoint import list_checkpoints, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from agents.config import ConfigError, TrainConfig, config_differences
from agents.kl import FixedKLController, kl_estimate
from agents.losses import masked_sum
from agents.policy import LMPolicy, SamplingConfig
from agents.rollout import RolloutBatch, collect_rollouts
from agents.run_log import CURVE_FILE, METRICS_FILE, RunLog, plot_curves, read_metrics, truncate_metrics

logger = logging.getLogger(__name__)


class TrainingDivergedError(RuntimeError):
    """The loss, gradients or weights went non-finite; training stopped before saving anything bad."""


# ---- the algorithm interface ---------------------------------------------------------------------
class Algorithm:
    """What differs between REINFORCE, PPO, RLOO and GRPO: :meth:`update` and a few class flags.

    The base owns the optimizer, the KL coefficient, the frozen reference (if any) and the
    bookkeeping every update needs (minibatches, a guarded optimizer step, KL to the reference).
    """

    value_head: ClassVar[bool] = False
    """True when the policy needs a value head on its trunk (PPO)."""
    default_aggregation: ClassVar[str] = "token-mean"

    def __init__(self, policy: LMPolicy, config: TrainConfig, reference: LMPolicy | None = None) -> None:
        self.policy = policy
        self.config = config
        self.reference = reference
        params = [p for p in policy.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=config.lr)
        self.kl_controller: Any = FixedKLController(config.kl_coef)
        self.generator = torch.Generator().manual_seed(config.seed)  # minibatch order only

    @classmethod
    def needs_reference(cls, config: TrainConfig) -> bool:
        """A frozen reference is loaded only when some KL term uses it."""
        return config.kl_coef > 0

    @property
    def aggregation(self) -> str:
        return self.config.loss_aggregation or self.default_aggregation

    def reset_options(self) -> dict[str, Any] | None:
        """Options for ``envs.reset`` (RLOO / GRPO ask for groups of completions per prompt)."""
        return None

    def update(self, batch: RolloutBatch, rewards: Tensor) -> dict[str, float]:
        """One learning step on a rollout batch; ``rewards`` (B,) are the env's, EOS penalty applied."""
        raise NotImplementedError

    # ---- shared pieces -----------------------------------------------------------------------
    @torch.no_grad()
    def reference_logprobs(self, batch: RolloutBatch) -> Tensor | None:
        """(B, T) logprobs of the batch's tokens under the frozen reference, or None without one."""
        if self.reference is None:
            return None
        return self.reference.score_sequences(batch.input_ids, batch.attention_mask, batch.prompt_length).logprobs

    def sequence_kl(self, logprobs: Tensor, ref_logprobs: Tensor, mask: Tensor, kind: str | None = None) -> Tensor:
        """(B,) summed per-token KL estimate of each episode, detached (a reward term, not a loss)."""
        per_token = kl_estimate(logprobs.detach(), ref_logprobs, kind or self.config.kl_kind)  # (B, T)
        return masked_sum(per_token, mask, dim=1)

    def minibatches(self, size: int) -> Iterator[Tensor]:
        """Shuffled index tensors of ``minibatch_size`` episodes covering the batch once."""
        order = torch.randperm(size, generator=self.generator)
        step = self.config.minibatch
        for start in range(0, size, step):
            yield order[start : start + step].to(self.policy.device)

    def optimizer_step(self, loss: Tensor) -> float:
        """Backward, clip, step; refuse to step on a non-finite loss or gradient. Returns the grad norm."""
        if not torch.isfinite(loss):
            raise TrainingDivergedError(f"non-finite loss ({loss.item()})")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        max_norm = self.config.max_grad_norm or float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        if not math.isfinite(grad_norm):
            raise TrainingDivergedError(f"non-finite gradient norm ({grad_norm})")
        self.optimizer.step()
        if not all(torch.isfinite(p).all() for p in params):
            raise TrainingDivergedError("the optimizer step made some weights non-finite")
        return grad_norm

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "kl_controller": self.kl_controller.state_dict(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.kl_controller.load_state_dict(state["kl_controller"])
        self.generator.set_state(state["generator"])


def algorithm_class(name: str) -> type[Algorithm]:
    """The :class:`Algorithm` subclass for ``--algo``."""
    from agents.grpo import GRPO
    from agents.ppo import PPO
    from agents.reinforce import Reinforce
    from agents.rloo import RLOO

    classes: dict[str, type[Algorithm]] = {"reinforce": Reinforce, "ppo": PPO, "rloo": RLOO, "grpo": GRPO}
    if name not in classes:
        raise ConfigError(f"unknown algo {name!r}; choose one of {', '.join(classes)}")
    return classes[name]


def batch_stats(batch: RolloutBatch, ref_logprobs: Tensor | None = None, kind: str = "k1") -> dict[str, float]:
    """Rollout statistics every algorithm logs: reward, length, EOS rate, and the summed per-token
    KL of the sampling policy to the reference (``kind`` estimator), averaged over episodes."""
    rewards = batch.rewards.float()
    stats = {
        "reward_mean": rewards.mean().item(),
        "reward_std": rewards.std().item() if rewards.numel() > 1 else 0.0,
        "completion_length": batch.response_mask.sum(-1).float().mean().item(),
        "eos_rate": batch.terminated.float().mean().item(),
        "kl": None,
    }
    if ref_logprobs is not None:
        per_token = kl_estimate(batch.logprobs, ref_logprobs, kind)  # (B, T)
        stats["kl"] = masked_sum(per_token, batch.response_mask, dim=1).mean().item()
    return stats


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


def rollout_seed(seed: int, step: int) -> int:
    """A well-mixed 32-bit seed for update ``step`` (the env seeds sub-env i with seed + i, so
    consecutive integers would make neighbouring updates share prompts)."""
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_envs(config: TrainConfig, tokenizer_path: str) -> Any:
    """The synchronous vector env of ``batch_size`` sub-envs, in the policy's tokenizer."""
    import gymnasium as gym

    import rlenv

    rlenv.check_env_id(config.env)
    kwargs = config.parsed_env_args()
    if config.max_new_tokens is not None:
        kwargs["max_new_tokens"] = config.max_new_tokens
    return gym.make_vec(config.env, num_envs=config.batch_size, vectorization_mode="vector_entry_point",
                        autoreset_mode="Disabled", tokenizer=tokenizer_path, **kwargs)


class Trainer:
    """Builds policy, reference, env and algorithm from a :class:`TrainConfig` and runs the loop.

    ``callback(record)`` is called after every update with the logged record (the CLI's progress bar).
    """

    def __init__(self, config: TrainConfig, callback: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.config = config
        self.callback = callback
        self.step = 0
        self.episodes = 0
        self.elapsed_offset = 0.0
        self.last_checkpoint: Path | None = None
        self._last_batch: RolloutBatch | None = None
        resume_state = self._prepare_resume() if config.resume else None
        self.out = self._out_dir(resume_state[0] if resume_state else None)
        self._build(resume_state)

    # ---- setup -------------------------------------------------------------------------------
    def _prepare_resume(self) -> tuple[Path, dict[str, Any]]:
        ckpt, state, saved = load_checkpoint(self.config.resume)
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
        from rlenv import DEFAULT_MODEL, check_env_id

        check_env_id(config.env)  # a typo fails here, before any model is loaded
        seed_everything(config.seed)
        model_path = config.model or DEFAULT_MODEL
        algo_cls = algorithm_class(config.algo)
        sampling = SamplingConfig(config.temperature, config.top_k, config.top_p)
        start_from = resume[0] if resume else model_path
        self.policy = LMPolicy.from_pretrained(start_from, value_head=algo_cls.value_head, lora_rank=config.lora_rank,
                                               device=config.device, sampling=sampling)
        reference = None
        if algo_cls.needs_reference(config):
            if resume and not self.policy.is_lora:
                # the reference is the *initial* model, not the checkpoint
                reference = LMPolicy.from_pretrained(model_path, device=config.device, sampling=sampling).reference()
            else:
                reference = self.policy.reference()
        self.envs = make_envs(config, model_path)
        self.algorithm = algo_cls(self.policy, config, reference)
        self.evaluator = None
        if config.eval_every:  # held-out scores logged as eval/... keys (agents.evaluation)
            from agents.evaluation import HeldoutEvaluator

            self.evaluator = HeldoutEvaluator(config, self.policy, reference, model_path)
        if resume:
            ckpt, state = resume
            self.algorithm.load_state_dict(state["algorithm"])
            set_rng_state(state["rng"])
            self.step, self.episodes = int(state["step"]), int(state["episodes"])
            self.elapsed_offset = float(state["elapsed_s"])
            self.last_checkpoint = ckpt
            self._carry_metrics(ckpt.parent.parent)
        logger.info("training %s on %s from %s (step %d) -> %s", config.algo, config.env, start_from, self.step, self.out)

    def _carry_metrics(self, source_run: Path) -> None:
        """Cut metrics back to the checkpoint (the updates after it will be redone)."""
        self.out.mkdir(parents=True, exist_ok=True)
        target = self.out / METRICS_FILE
        if source_run.resolve() != self.out.resolve() and (source_run / METRICS_FILE).exists():
            shutil.copyfile(source_run / METRICS_FILE, target)
        if target.exists():
            truncate_metrics(target, self.step)

    # ---- the loop ----------------------------------------------------------------------------
    def done(self, elapsed: float) -> bool:
        config = self.config
        if config.steps is not None and self.step >= config.steps:
            return True
        return config.time_budget is not None and elapsed >= config.time_budget

    def run(self) -> TrainResult:
        config = self.config
        log = RunLog(self.out, tensorboard=config.tensorboard)
        start = time.perf_counter()
        diverged = False
        try:
            while not self.done(self.elapsed_offset + time.perf_counter() - start):
                record = self._one_update(start)
                if self.evaluator is not None and self.step % config.eval_every == 0:
                    record.update(self.evaluator())
                log.log(record)
                if config.checkpoint_every and self.step % config.checkpoint_every == 0:
                    self._save(record["elapsed_s"])
                if self.callback is not None:
                    self.callback(record)
        except TrainingDivergedError as err:
            diverged = True
            kept = (f"the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint
                    else "no checkpoint had been saved yet (lower --checkpoint-every to keep more)")
            raise TrainingDivergedError(
                f"training stopped at update {self.step + 1}: {err}; {kept}. Lower --lr (now {config.lr:g}) "
                f"or --max-grad-norm, then --resume from that checkpoint with the same flags"
            ) from None
        finally:
            log.close()
            self.envs.close()
            if self.evaluator is not None:
                self.evaluator.close()
            records = read_metrics(self.out)
            plot_curves(records, self.out / CURVE_FILE, title=f"{config.algo} on {config.env} (seed {config.seed})")
        elapsed = self.elapsed_offset + time.perf_counter() - start
        if not diverged and (self.last_checkpoint is None or not self.last_checkpoint.name.endswith(f"{self.step:06d}")):
            self._save(elapsed)
        return TrainResult(self.out, self.step, self.episodes, elapsed, self.last_checkpoint, records)

    def _one_update(self, start: float) -> dict[str, Any]:
        config, algo = self.config, self.algorithm
        t0 = time.perf_counter()
        try:
            batch = collect_rollouts(self.policy, self.envs, seed=rollout_seed(config.seed, self.step),
                                     options=algo.reset_options())
        except RuntimeError as err:
            # finite but huge weights can overflow to NaN logits, which sampling then chokes on
            if self._last_batch is not None and not self._policy_outputs_finite(self._last_batch):
                raise TrainingDivergedError("the policy's outputs are non-finite, so no token can be sampled") from err
            raise
        self._last_batch = batch
        t1 = time.perf_counter()
        rewards = batch.rewards.float() - config.missing_eos_penalty * batch.truncated.float()
        stats = algo.update(batch, rewards)
        if not math.isfinite(stats.get("loss", 0.0)):
            raise TrainingDivergedError(f"non-finite loss ({stats['loss']})")
        self.step += 1
        self.episodes += batch.batch_size
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
        return record

    @torch.no_grad()
    def _policy_outputs_finite(self, batch: RolloutBatch) -> bool:
        scores = self.policy.score_sequences(batch.input_ids[:2], batch.attention_mask[:2], batch.prompt_length)
        return bool(torch.isfinite(scores.logprobs[batch.response_mask[:2].bool()]).all())

    def _save(self, elapsed: float) -> None:
        state = {
            "step": self.step,
            "episodes": self.episodes,
            "elapsed_s": float(elapsed),
            "algorithm": self.algorithm.state_dict(),
            "rng": rng_state(),
        }
        saved_config = replace(self.config, resume=None)
        self.last_checkpoint = save_checkpoint(self.out, self.step, self.policy, state, saved_config,
                                               keep=self.config.keep_checkpoints)


def train(config: TrainConfig, callback: Callable[[dict[str, Any]], None] | None = None) -> TrainResult:
    """Run ``config`` to its step / time budget; see :class:`Trainer`."""
    return Trainer(config, callback).run()


@torch.no_grad()
def evaluate(policy: LMPolicy, envs: Any, episodes: int, *, seed: int = 0, group_size: int | None = None,
             num_samples: int = 2) -> dict[str, Any]:
    """Mean reward and episode statistics of ``policy`` over ``episodes`` rollouts (rounded up to whole
    batches of ``envs.num_envs``), each batch seeded from ``(seed, i)``; plus a few sample texts."""
    rewards, lengths, eos = [], [], []
    samples: list[dict[str, Any]] = []
    options = {"group_size": group_size} if group_size else None
    for i in range(max(1, math.ceil(episodes / envs.num_envs))):
        batch = collect_rollouts(policy, envs, seed=rollout_seed(seed, 10**6 + i), options=options)
        rewards.append(batch.rewards.float().cpu())
        lengths.append(batch.response_lengths.float().cpu())
        eos.append(batch.terminated.float().cpu())
        for j in range(min(num_samples - len(samples), batch.batch_size)):
            samples.append({"prompt": batch.prompts[j], "completion": batch.completions[j],
                            "reward": round(float(batch.rewards[j]), 4)})
    r = torch.cat(rewards)
    return {
        "episodes": int(r.numel()),
        "reward_mean": r.mean().item(),
        "reward_std": r.std().item() if r.numel() > 1 else 0.0,
        "length_mean": torch.cat(lengths).mean().item(),
        "eos_rate": torch.cat(eos).mean().item(),
        "samples": samples,
    }
