"""A task's prompts as a Hugging Face ``datasets.Dataset``, and its reward as a TRL reward function.

Layer: on top, above registration (it makes registered ids).

Together they let TRL train on an rlenv task without rewriting it::

    from trl import GRPOConfig, GRPOTrainer
    from rlenv.hf_dataset import prompt_dataset, task_reward

    trainer = GRPOTrainer(model=rlenv.DEFAULT_MODEL, args=GRPOConfig(...),
                          train_dataset=prompt_dataset("rlenv/Arithmetic-v0", n=512),
                          reward_funcs=[task_reward("rlenv/Arithmetic-v0")])

The dataset has a ``prompt`` column plus every extra column the task's prompts carry (``answer``
for Arithmetic, ``keyword`` for Keyword, ``entry`` for ReasoningGym), which TRL hands to the reward
function as keyword arguments — exactly as the env does. Needs the ``trl`` extra
(``pip install -e ".[trl]"``) for ``datasets``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from rlenv.prompts import ListPrompts, Prompt, PromptSource, as_prompt_source
from rlenv.registration import check_env_id

__all__ = ["prompt_dataset", "prompt_records", "task_reward"]


def _task_setup(env_id: str, env_kwargs: dict[str, Any]) -> Any:
    check_env_id(env_id)
    env = gym.make(env_id, **env_kwargs)
    try:
        return env.unwrapped.setup  # type: ignore[attr-defined]  # every rlenv id's env has one
    finally:
        env.close()


def _source(spec: Any, env_kwargs: dict[str, Any]) -> PromptSource:
    if isinstance(spec, str) and spec.startswith("rlenv/"):
        return _task_setup(spec, env_kwargs).prompts
    if env_kwargs:
        raise TypeError(f"env kwargs {sorted(env_kwargs)} apply only to a registered env id like 'rlenv/Keyword-v0'")
    return as_prompt_source(spec)


def prompt_records(source: Any, n: int | None = None, *, seed: int = 0, **env_kwargs: Any) -> list[dict[str, Any]]:
    """``[{"prompt": ..., <extra columns>}]`` from an env id or any prompt spec rlenv accepts.

    A fixed list (a list, a ``.txt``/``.jsonl`` file, a task's prompt file) gives its prompts in
    order: all of them, or the first ``n``. A generated source (a callable, ReasoningGym) gives ``n``
    prompts drawn with a generator seeded by ``seed``, the same ones an env seeded alike would draw
    in sequence; an iterable gives its next ``n``. ``env_kwargs`` configure a task (e.g.
    ``difficulty="hard"``, ``task="letter_counting"``).
    """
    if n is not None and n < 1:
        raise ValueError(f"n must be >= 1 (or None for a whole fixed list), got {n}")
    prompts_source = _source(source, env_kwargs)
    if isinstance(prompts_source, ListPrompts):
        prompts: list[Prompt] = prompts_source.prompts[:n] if n is not None else list(prompts_source.prompts)
    else:
        if n is None:
            raise ValueError(
                f"{prompts_source.description} has no fixed length; pass n= (how many prompts to draw)"
            )
        rng = np.random.default_rng(seed)
        prompts = [prompts_source.sample(rng) for _ in range(n)]
    keys = sorted({k for p in prompts for k in p.columns} - {"prompt"})
    # a conversational prompt stays a list of messages: TRL's conversational format
    return [{"prompt": [dict(m) for m in p.messages] if p.messages else p.text, **{k: p.columns.get(k) for k in keys}}
            for p in prompts]


def prompt_dataset(source: Any, n: int | None = None, *, seed: int = 0, **env_kwargs: Any) -> Any:
    """:func:`prompt_records` as a ``datasets.Dataset`` (standard, not conversational, format)."""
    try:  # lazy: the optional 'datasets' package, heavy to import
        from datasets import Dataset
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("prompt_dataset needs the 'datasets' package: pip install -e \".[trl]\"") from exc
    records = prompt_records(source, n, seed=seed, **env_kwargs)
    try:
        return Dataset.from_list(records)
    except (TypeError, ValueError) as exc:  # pyarrow's ArrowInvalid / ArrowTypeError subclass these
        mixed = {k: sorted({type(r[k]).__name__ for r in records if r[k] is not None}) for k in records[0]}
        mixed = {k: kinds for k, kinds in mixed.items() if len(kinds) > 1}
        raise ValueError(
            f"prompt_dataset: a datasets column holds one type, but {mixed or 'some column'} mixes several ({exc}); "
            "give every prompt's extra column the same type, e.g. all strings"
        ) from exc


def task_reward(env_id: str, **env_kwargs: Any) -> Any:
    """The reward model a registered task scores with, as a TRL reward function (see
    :func:`reward_models.trl_interop.as_trl_reward`)."""
    from reward_models.trl_interop import as_trl_reward  # lazy: the TRL bridge is optional

    return as_trl_reward(_task_setup(env_id, env_kwargs).reward_model)
