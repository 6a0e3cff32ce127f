"""Multi-turn tasks where the env's reply matters (see :mod:`rlenv.turns` for the mechanics).

- ``rlenv/GuessNumber-v0``: the env picked a number; the policy writes a guess per turn, the env
  answers ``higher`` / ``lower``; +1 for the right guess, ``-turn_penalty`` for every wrong one.
- ``rlenv/GuessNumberToy-v0``: the same game over a word-level vocabulary of a few symbols, one
  token per turn, that stock SB3 ``PPO("MultiInputPolicy")`` learns without an LM.
- ``rlenv/Calculator-v0``: a multiplication question; a turn ``calc(a*b)`` makes the env insert
  the result, any other turn is the final answer, scored 1 if its first number is right.

Every task takes ``feedback=False``: the env's informative replies are replaced by one fixed,
non-informative reply (``wrong`` / ``?``), same length budget and same rewards, so that a policy
trained with and without feedback can be compared.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from rlenv.tasks.token_reverse import symbol_tokenizer
from rlenv.turns import TurnHistory

_FIRST_INT = re.compile(r"-?\d+")
_CALL = re.compile(r"calc\(\s*(-?\d+)\s*([-+*])\s*(-?\d+)\s*\)")


class GuessNumberResponder:
    """Answers a guess with ``higher``/``lower`` (or ``wrong`` without feedback); ends on the number,
    or (``max_turns``) after that many guesses: the game is lost then, so the episode *terminates*.

    With ``max_turns``, a game that ends early without the number (the policy quit with EOS in a
    chat, or spent the token budget: ``history.final_turn``) is lost too and costs what losing
    costs: the guesses it did not make are charged at once, ``max_turns * turn_penalty`` in all.
    Otherwise quitting after one wrong guess (-0.1) would beat playing on and losing (-0.5), and RL
    finds that before it finds the game.

    ``cue`` (e.g. ``"I guess "``) follows every reply, so the policy's next turn starts after it; with
    a cue each reply also starts on a line of its own when the policy's turn did not end one."""

    def __init__(self, feedback: bool = True, turn_penalty: float = 0.1, newline: str = "\n",
                 max_turns: int | None = None, cue: str = "") -> None:
        self.feedback = feedback
        self.turn_penalty = turn_penalty
        self.newline = newline
        self.max_turns = max_turns
        self.cue = cue
        self.__name__ = "guess_number" + ("" if feedback else "_no_feedback")

    def __call__(self, history: TurnHistory) -> tuple[str, float, bool]:
        secret = int(history.columns["answer"])
        found = _FIRST_INT.search(history.last_text)
        if found is not None and int(found.group()) == secret:
            return "", 1.0, True
        turns = history.num_policy_turns
        if self.max_turns is not None and (turns >= self.max_turns or history.final_turn):
            return "", -self.turn_penalty * (self.max_turns - turns + 1), True  # lost: unmade guesses charged
        if found is None:
            hint = "number?"
        else:
            hint = "higher" if int(found.group()) < secret else "lower"
        reply = (hint if self.feedback else "wrong") + self.newline + self.cue
        if self.cue and not history.last_text.endswith(self.newline):
            reply = self.newline + reply
        return reply, -self.turn_penalty, False


def guess_number_prompts(high: int, cue: str = "") -> Callable[[np.random.Generator], dict[str, Any]]:
    def draw(rng: np.random.Generator) -> dict[str, Any]:
        return {"prompt": f"I picked a number from 1 to {high}. Guess it, one number per line.\n{cue}",
                "answer": int(rng.integers(1, high + 1))}

    draw.__name__ = f"a secret number in [1, {high}]"
    return draw


def guess_number(high: int = 8, feedback: bool = True, turn_penalty: float = 0.1, max_turns: int | None = 3,
                 cue: str = "I guess ", **env_kwargs: Any) -> dict[str, Any]:
    """TextGenEnv kwargs of GuessNumber on the embedded tokenizer.

    The defaults are a game the embedded model learns with ``rlenv train``'s own defaults: a number
    from 1 to 8, three guesses (``max_turns``: the game is lost, terminated, after that many wrong
    guesses; ``None``: only the token budget ends it), one token per guess (``max_turn_tokens=1``;
    the embedded tokenizer writes 1-9 as one token each, so pass ``max_turn_tokens=None`` for
    ``high`` above 9, and the turns end at a newline), and ``cue``, text after the prompt and after
    every reply that the next guess follows: after ``"I guess "`` the embedded model starts a
    digit 99% of the time, after ``"Guess: "`` 8% (its chat stage taught it to open a tool call
    there), after a bare newline 0.1% (``python benchmarks/guess_cue_probe.py``)."""
    if high < 2:
        raise ValueError(f"high must be >= 2, got {high}")
    if max_turns is not None and max_turns < 1:
        raise ValueError(f"max_turns must be >= 1, got {max_turns}")
    responder = GuessNumberResponder(feedback, turn_penalty, max_turns=max_turns, cue=cue)
    # one token per guess; each reply is at most ~10 tokens (newline, hint, newline, cue), so max_turns
    # guesses and their replies fit the budget and losing the game is always reachable
    defaults = dict(prompts=guess_number_prompts(high, cue), responder=responder, end_of_turn="\n",
                    stop_strings=["\n"], max_turn_tokens=1, max_prompt_tokens=32, max_new_tokens=33)
    kwargs = {**defaults, **env_kwargs}
    if high > 9 and kwargs["max_turn_tokens"] == 1:
        raise ValueError(f"high={high} needs guesses of more than one token (10 and up are two); pass "
                         "max_turn_tokens=None (a turn then ends at a newline) or a larger max_turn_tokens")
    return kwargs


def guess_number_toy(num_values: int = 4, max_turns: int = 3, feedback: bool = True, turn_penalty: float = 0.1,
                     **env_kwargs: Any) -> dict[str, Any]:
    """GuessNumber over symbols ``0 .. num_values-1``: one token per turn, one token per reply."""
    if not 2 <= num_values <= 64:
        raise ValueError(f"num_values must be in [2, 64], got {num_values}")
    if max_turns < 1:
        raise ValueError(f"max_turns must be >= 1, got {max_turns}")
    symbols = [str(v) for v in range(num_values)] + ["guess", "higher", "lower", "wrong", "number?"]

    def draw(rng: np.random.Generator) -> dict[str, Any]:
        return {"prompt": "guess", "answer": int(rng.integers(num_values))}

    draw.__name__ = f"a secret symbol in 0..{num_values - 1}"
    # each turn is a guess + a one-token reply; the last guess needs no reply. The turn limit is a
    # rule of the game (lost: terminated), not a time limit to bootstrap over.
    defaults = dict(tokenizer=symbol_tokenizer(symbols), prompts=draw,
                    responder=GuessNumberResponder(feedback, turn_penalty, newline="", max_turns=max_turns),
                    max_turn_tokens=1, max_prompt_tokens=1, max_new_tokens=2 * max_turns - 1)
    return {**defaults, **env_kwargs}


class CalculatorResponder:
    """``calc(a op b)`` turns get the result inserted; any other turn is the scored final answer."""

    def __init__(self, feedback: bool = True, max_calls: int = 3) -> None:
        self.feedback = feedback
        self.max_calls = max_calls
        self.__name__ = "calculator" + ("" if feedback else "_no_feedback")

    def __call__(self, history: TurnHistory) -> tuple[str, float, bool]:
        call = _CALL.search(history.last_text)
        calls_so_far = history.num_policy_turns - 1
        if call is None or calls_so_far >= self.max_calls:
            found = _FIRST_INT.search(history.last_text)
            right = found is not None and int(found.group()) == int(history.columns["answer"])
            return "", float(right), True
        if not self.feedback:
            return "?\n", 0.0, False
        a, op, b = int(call.group(1)), call.group(2), int(call.group(3))
        result = {"+": a + b, "-": a - b, "*": a * b}[op]
        return f"{result}\n", 0.0, False


def calculator_prompts(
    max_operand: int, question: str = "{a}*{b}=? calc(x*y) computes.\n"
) -> Callable[[np.random.Generator], dict[str, Any]]:
    """``f(rng) -> {"prompt": question.format(a=a, b=b), "answer": a * b}``, operands in [2, max_operand]."""

    def draw(rng: np.random.Generator) -> dict[str, Any]:
        a, b = (int(x) for x in rng.integers(2, max_operand + 1, size=2))
        return {"prompt": question.format(a=a, b=b), "answer": a * b}

    draw.__name__ = f"a*b with operands in [2, {max_operand}]"
    return draw


def calculator(max_operand: int = 99, feedback: bool = True, max_calls: int = 3, **env_kwargs: Any) -> dict[str, Any]:
    """TextGenEnv kwargs of the calculator tool task on the embedded tokenizer."""
    if max_operand < 2:
        raise ValueError(f"max_operand must be >= 2, got {max_operand}")
    defaults = dict(prompts=calculator_prompts(max_operand), responder=CalculatorResponder(feedback, max_calls),
                    end_of_turn="\n", stop_strings=["\n"], max_prompt_tokens=24, max_new_tokens=40)
    return {**defaults, **env_kwargs}
