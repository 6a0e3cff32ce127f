"""Reward-model combinators: weighted sums, running normalisation, clipping."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from reward_models.base import RewardModelError, check_reward_signature, reward_name, score
from reward_models.batch import check_batch


class WeightedSum:
    """A weighted sum of reward models: ``sum(weight_i * rm_i)``; range follows the parts.

    ``parts`` maps a component name to ``(reward_model, weight)``. ``score_with_components`` reports
    each part's *unweighted* reward under its name (and the parts' own components as ``name.sub``).
    """

    def __init__(self, parts: Mapping[str, tuple[Any, float]], name: str = "weighted_sum") -> None:
        if not parts:
            raise RewardModelError("weighted_sum: pass at least one part as {'name': (reward_model, weight)}")
        for key, part in parts.items():
            if not (isinstance(part, tuple) and len(part) == 2 and callable(part[0])):
                raise RewardModelError(
                    f"weighted_sum: part {key!r} must be (reward_model, weight), got {part!r}"
                )
            if not (isinstance(part[1], (int, float)) and math.isfinite(part[1])):
                raise RewardModelError(
                    f"weighted_sum: weight of {key!r} must be a finite number, got {part[1]!r}"
                )
            check_reward_signature(part[0])
        self.parts = {str(k): (rm, float(w)) for k, (rm, w) in parts.items()}
        self.name = name

    def score_with_components(
        self, prompts: Sequence[str], completions: Sequence[str], **kwargs: Any
    ) -> tuple[list[float], dict[str, list[float]]]:
        check_batch(self.name, prompts, completions)
        total = [0.0] * len(completions)
        components: dict[str, list[float]] = {}
        for key, (rm, weight) in self.parts.items():
            batch = score(rm, prompts, completions, **kwargs)
            components[key] = batch.rewards
            components.update({f"{key}.{sub}": values for sub, values in batch.components.items()})
            total = [t + weight * r for t, r in zip(total, batch.rewards, strict=True)]
        return total, components

    @property
    def __name__(self) -> str:
        """The name TRL logs a reward function under (``GRPOTrainer`` reads ``__name__``)."""
        return self.name

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], **kwargs: Any) -> list[float]:
        return self.score_with_components(prompts, completions, **kwargs)[0]


class RunningNormalize:
    """Standardises an inner reward by its running mean and std (Welford): ``(r - mean) / (std + eps)``.

    Each call first folds the batch into the statistics (unless ``update=False``, e.g. for
    evaluation), then normalises it; the result is clipped to ``[-clip, clip]`` when ``clip`` is set.
    ``state_dict()``/``load_state_dict()`` save and restore the statistics to resume training.
    """

    def __init__(self, rm: Any, eps: float = 1e-8, clip: float | None = None, update: bool = True) -> None:
        if not callable(rm):
            raise RewardModelError(f"running_normalize: the inner reward model must be callable, got {rm!r}")
        if eps <= 0:
            raise RewardModelError(f"running_normalize: eps must be > 0, got {eps}")
        if clip is not None and clip <= 0:
            raise RewardModelError(f"running_normalize: clip must be > 0 or None, got {clip}")
        check_reward_signature(rm)
        self.rm, self.eps, self.clip, self.update = rm, eps, clip, update
        self.name = f"normalize({reward_name(rm)})"
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    @property
    def std(self) -> float:
        """Population standard deviation of every reward seen so far (0.0 before two are seen)."""
        return math.sqrt(self.m2 / self.count) if self.count > 1 else 0.0

    def observe(self, rewards: Sequence[float]) -> None:
        """Fold ``rewards`` into the running statistics (Welford's update, one value at a time)."""
        for r in rewards:
            self.count += 1
            delta = r - self.mean
            self.mean += delta / self.count
            self.m2 += delta * (r - self.mean)

    def normalize(self, rewards: Sequence[float]) -> list[float]:
        """Standardise ``rewards`` with the current statistics (no update)."""
        out = [(r - self.mean) / (self.std + self.eps) for r in rewards]
        if self.clip is not None:
            out = [min(self.clip, max(-self.clip, r)) for r in out]
        return out

    def score_with_components(
        self, prompts: Sequence[str], completions: Sequence[str], **kwargs: Any
    ) -> tuple[list[float], dict[str, list[float]]]:
        batch = score(self.rm, prompts, completions, **kwargs)
        if self.update:
            self.observe(batch.rewards)
        return self.normalize(batch.rewards), {"raw": batch.rewards, **batch.components}

    @property
    def __name__(self) -> str:
        """The name TRL logs a reward function under (``GRPOTrainer`` reads ``__name__``)."""
        return self.name

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], **kwargs: Any) -> list[float]:
        return self.score_with_components(prompts, completions, **kwargs)[0]

    def state_dict(self) -> dict[str, float]:
        """The running statistics, JSON-serialisable."""
        return {"count": self.count, "mean": self.mean, "m2": self.m2}

    def load_state_dict(self, state: Mapping[str, float]) -> None:
        """Restore statistics saved by :meth:`state_dict`."""
        missing = {"count", "mean", "m2"} - set(state)
        if missing:
            raise RewardModelError(
                f"{self.name}: state is missing {sorted(missing)}; pass what state_dict() returned"
            )
        count, mean, m2 = int(state["count"]), float(state["mean"]), float(state["m2"])
        if count < 0 or m2 < 0 or not (math.isfinite(mean) and math.isfinite(m2)):
            raise RewardModelError(f"{self.name}: invalid statistics {dict(state)!r}")
        self.count, self.mean, self.m2 = count, mean, m2


class Clip:
    """Clips an inner reward to ``[low, high]``; the raw value is reported as component ``raw`` when finite.

    Infinite inner rewards are clipped to the bounds (so Clip guards a model that can overflow);
    NaN stays NaN and is rejected by :func:`reward_models.score`.
    """

    def __init__(self, rm: Any, low: float = -1.0, high: float = 1.0) -> None:
        if not callable(rm):
            raise RewardModelError(f"clip: the inner reward model must be callable, got {rm!r}")
        if not low < high:
            raise RewardModelError(f"clip: need low < high, got low={low}, high={high}")
        check_reward_signature(rm)
        self.rm, self.low, self.high = rm, float(low), float(high)
        self.name = f"clip({reward_name(rm)})"

    def score_with_components(
        self, prompts: Sequence[str], completions: Sequence[str], **kwargs: Any
    ) -> tuple[list[float], dict[str, list[float]]]:
        check_batch(self.name, prompts, completions)
        if hasattr(self.rm, "score_with_components"):
            raw, components = self.rm.score_with_components(
                prompts=list(prompts), completions=list(completions), **kwargs
            )
        else:
            raw, components = self.rm(prompts=list(prompts), completions=list(completions), **kwargs), {}
        try:
            values = [float(r) for r in raw]
        except (TypeError, ValueError) as exc:
            raise RewardModelError(
                f"reward model {reward_name(self.rm)!r} returned non-numbers: {exc}"
            ) from exc
        clipped = [r if math.isnan(r) else min(self.high, max(self.low, r)) for r in values]
        raw_part = {"raw": values} if all(math.isfinite(r) for r in values) else {}  # inf is no component
        return clipped, {**raw_part, **dict(components)}

    @property
    def __name__(self) -> str:
        """The name TRL logs a reward function under (``GRPOTrainer`` reads ``__name__``)."""
        return self.name

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], **kwargs: Any) -> list[float]:
        return self.score_with_components(prompts, completions, **kwargs)[0]
