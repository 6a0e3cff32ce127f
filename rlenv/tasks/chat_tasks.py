"""Chat tasks (see :mod:`rlenv.chat` for the mechanics): conversations, tool calls, message replies.

- ``rlenv/ChatCalculator-v0``: "What is a times b?" with a ``multiply(a, b)`` tool; the reward
  model scores the final answer (the first assistant turn without a tool call): 1 if its last
  number is ``a * b``, else 0.
- ``rlenv/ChatGuessNumber-v0``: GuessNumber as a chat: the env's ``higher`` / ``lower`` are user
  messages rendered by the template.

The embedded model renders them with its own ChatML template (``tools.chat`` built it, and taught
it conversations and ``multiply`` calls that are right only part of the time, so RL has headroom).
Pass an instruct model's tokenizer to use its template instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rlenv.tasks.multiturn_tasks import GuessNumberResponder, calculator_prompts
from rlenv.tasks.splits import split_generator


def multiply(a: int, b: int) -> int:
    """Multiply two integers.

    Args:
        a: the first factor
        b: the second factor
    """
    return a * b


def chat_calculator(
    max_operand: int = 99, split: str = "train", max_tool_calls: int = 3, **env_kwargs: Any
) -> dict[str, Any]:
    """TextGenEnv kwargs of ChatCalculator: a chat with a ``multiply`` tool, the final answer scored."""
    if max_operand < 2:
        raise ValueError(f"max_operand must be >= 2, got {max_operand}")
    defaults = dict(
        prompts=split_generator(calculator_prompts(max_operand, "What is {a} times {b}?"), split),
        tools=[multiply],
        max_tool_calls=max_tool_calls,
        reward_model="numeric",
        max_prompt_tokens=16,
        max_new_tokens=96,
    )
    return {**defaults, **env_kwargs}


def chat_guess_number_prompts(high: int) -> Callable[[np.random.Generator], dict[str, Any]]:
    def draw(rng: np.random.Generator) -> dict[str, Any]:
        return {
            "prompt": f"I picked a number from 1 to {high}. Guess it: answer with one number.",
            "answer": int(rng.integers(1, high + 1)),
        }

    draw.__name__ = f"a secret number in [1, {high}]"
    return draw


def chat_guess_number(
    high: int = 20, feedback: bool = True, turn_penalty: float = 0.1, max_turns: int = 5, **env_kwargs: Any
) -> dict[str, Any]:
    """TextGenEnv kwargs of GuessNumber as a chat: each guess is an assistant turn, each hint a user message."""
    if high < 2:
        raise ValueError(f"high must be >= 2, got {high}")
    if max_turns < 1:
        raise ValueError(f"max_turns must be >= 1, got {max_turns}")
    responder = GuessNumberResponder(feedback, turn_penalty, newline="", max_turns=max_turns)
    defaults = dict(
        prompts=chat_guess_number_prompts(high),
        responder=responder,
        chat=True,
        max_prompt_tokens=24,
        max_new_tokens=96,  # five short guesses and their replies (17 tokens a turn) fit: losing is reachable
    )
    return {**defaults, **env_kwargs}
