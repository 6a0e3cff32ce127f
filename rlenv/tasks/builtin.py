"""Builders of the named LM tasks: each returns :class:`rlenv.TextGenEnv` keyword arguments.

Every builder's defaults run on the embedded model (``tokenizer=None`` means
``rlenv.DEFAULT_MODEL``); any argument of ``TextGenEnv`` may be passed to override them.
Every named LM task takes ``split="train"`` (default) or ``"heldout"``: disjoint prompt sets
(see :mod:`rlenv.tasks.splits`; sizes in ``SPLIT_SIZES``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

import reward_models
from rlenv.assets import DATA_DIR as DATA
from rlenv.assets import REVIEW_RM_DIR
from rlenv.tasks.splits import split_generator, split_prompt_file

SPLIT_SIZES: dict[str, str] = {
    "rlenv/PositiveReview-v0": "240 train / 60 held-out review openings",
    "rlenv/Brief-v0": "240 train / 60 held-out review openings",
    "rlenv/Keyword-v0": "240 train / 60 held-out words",
    "rlenv/ContinueReview-v0": "240 train / 60 held-out openings with references",
    "rlenv/LearnedReview-v0": "240 train / 60 held-out review openings",
    "rlenv/Arithmetic-v0": "easy: 73 train / 27 held-out sums; medium: ~15,950 / ~4,050 problems",
}
"""documented sizes of each task's prompt splits (checked by the tests)"""


def positive_review(split: str = "train", **env_kwargs: Any) -> dict[str, Any]:
    """Review openings; reward = VADER compound of the completion, in [-1, 1]."""
    defaults = dict(prompts=split_prompt_file(DATA / "review_prompts.txt", split), reward_model="vader",
                    max_prompt_tokens=16, max_new_tokens=24)
    return {**defaults, **env_kwargs}


def brief(target_words: int = 4, split: str = "train", **env_kwargs: Any) -> dict[str, Any]:
    """Review openings; reward = ``max(0, 1 - |words - target| / target)``: finish in ``target_words`` words.

    A length-controlled task: the policy must learn *when* to emit EOS. The untrained model writes
    one to three sentences, so the reward starts low and rises as completions shorten.
    """
    defaults = dict(prompts=split_prompt_file(DATA / "review_prompts.txt", split),
                    reward_model=reward_models.make("length", target=target_words, unit="words"),
                    max_prompt_tokens=16, max_new_tokens=24)
    return {**defaults, **env_kwargs}


def learned_review(split: str = "train", rm_path: str | Path | None = None, **env_kwargs: Any) -> dict[str, Any]:
    """Review openings; reward = a small learned reward model's score of prompt + completion (trained on
    VADER-scored reviews by ``python -m tools.reward_model``; ``rm_path`` swaps in another)."""
    defaults = dict(prompts=split_prompt_file(DATA / "review_prompts.txt", split),
                    reward_model=reward_models.make("learned", path=rm_path or REVIEW_RM_DIR),
                    max_prompt_tokens=16, max_new_tokens=24)
    return {**defaults, **env_kwargs}


def continue_review(split: str = "train", **env_kwargs: Any) -> dict[str, Any]:
    """Review openings with the review's real continuation; reward = sentence chrF against it, in [0, 1]."""
    defaults = dict(prompts=split_prompt_file(DATA / "review_references.jsonl", split),
                    reward_model=reward_models.make("chrf"), max_prompt_tokens=16, max_new_tokens=24)
    return {**defaults, **env_kwargs}


# operand range and operators per difficulty
ARITHMETIC_LEVELS: dict[str, tuple[int, str]] = {"easy": (9, "+"), "medium": (99, "+-"), "hard": (99, "+-*")}


def arithmetic_prompts(max_operand: int, operators: str) -> Callable[[np.random.Generator], dict[str, Any]]:
    """``f(rng) -> {"prompt": "a+b=", "answer": a+b}`` with non-negative results for ``-``."""

    def draw(rng: np.random.Generator) -> dict[str, Any]:
        a, b = (int(x) for x in rng.integers(0, max_operand + 1, size=2))
        op = operators[int(rng.integers(len(operators)))]
        if op == "-" and b > a:
            a, b = b, a
        if op == "*":
            b = b % 10  # one-digit multiplier keeps "hard" within reach of a small model
        answer = {"+": a + b, "-": a - b, "*": a * b}[op]
        return {"prompt": f"{a}{op}{b}=", "answer": answer}

    draw.__name__ = f"a{'/'.join(operators)}b= with operands up to {max_operand}"
    return draw


def arithmetic(difficulty: Literal["easy", "medium", "hard"] = "easy", max_operand: int | None = None,
               operators: str | None = None, partial_width: float | None = None, split: str = "train",
               **env_kwargs: Any) -> dict[str, Any]:
    """"a+b=" prompts; reward 1.0 if the first number of the completion is the answer, else partial
    credit ``max(0, 1 - |x - answer| / partial_width)`` (``partial_width=None``: the seeds' 0/1 indicator)."""
    if difficulty not in ARITHMETIC_LEVELS:
        raise ValueError(f"difficulty must be one of {sorted(ARITHMETIC_LEVELS)}, got {difficulty!r}")
    level_max, level_ops = ARITHMETIC_LEVELS[difficulty]
    operators = operators or level_ops
    if not operators or set(operators) - set("+-*"):
        raise ValueError(f"operators must be drawn from '+-*', got {operators!r}")
    defaults = dict(prompts=split_generator(arithmetic_prompts(max_operand or level_max, operators), split),
                    reward_model=reward_models.make("numeric", which="first", partial_width=partial_width),
                    max_prompt_tokens=12, max_new_tokens=8)
    return {**defaults, **env_kwargs}


def keyword(max_words: int | None = 20, length_penalty: float = 0.02, fuzzy: bool = True, split: str = "train",
            **env_kwargs: Any) -> dict[str, Any]:
    """Instructions naming a word; reward 1.0 if the completion contains it (``fuzzy``: else the best
    character similarity of a completion word to it, in [0, 1)), minus a length penalty."""
    defaults = dict(prompts=split_prompt_file(DATA / "keyword_prompts.jsonl", split),
                    reward_model=reward_models.make("keyword", max_words=max_words, length_penalty=length_penalty,
                                                    fuzzy=fuzzy),
                    max_prompt_tokens=16, max_new_tokens=24)
    return {**defaults, **env_kwargs}


def reasoning_gym_prompts(task: str, config: dict[str, Any]) -> Callable[[np.random.Generator], dict[str, Any]]:
    """``f(rng) -> {"prompt": question, "entry": entry}``: one fresh reasoning-gym item per episode,
    seeded from the env's RNG (so ``reset(seed=...)`` fixes the questions)."""
    import reasoning_gym  # lazy: an optional extra, imported only when this task is made

    reasoning_gym.create_dataset(task, seed=0, size=1, **config)  # fail fast on a bad task/config

    def draw(rng: np.random.Generator) -> dict[str, Any]:
        entry = reasoning_gym.create_dataset(task, seed=int(rng.integers(2**31)), size=1, **config)[0]
        return {"prompt": entry["question"], "entry": entry}

    draw.__name__ = f"reasoning-gym {task!r}"
    return draw


def reasoning_gym_task(task: str = "basic_arithmetic", config: dict[str, Any] | None = None,
                       **env_kwargs: Any) -> dict[str, Any]:
    """Any reasoning-gym task by name + config, scored by its own ``score_answer``."""
    scorer = reward_models.make("reasoning_gym", task=task)  # validates the name, suggests close ones
    defaults = dict(prompts=reasoning_gym_prompts(task, dict(config or {})), reward_model=scorer,
                    max_prompt_tokens=192, max_new_tokens=32)
    return {**defaults, **env_kwargs}
