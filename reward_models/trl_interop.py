"""TRL interop: any rlenv reward model as a ``trl.GRPOTrainer`` reward function.

Our protocol already is TRL's reward-function signature, so most reward models can be passed to
``GRPOTrainer(reward_funcs=[...])`` as they are (TRL logs them under ``__name__``, which every
built-in defines). :func:`as_trl_reward` covers the rest and adds what TRL's calling convention
needs:

- TRL passes bookkeeping kwargs (``trainer_state``, ``completion_ids``, ``log_extra``,
  ``log_metric``, ``environments``) beside the dataset columns; they are dropped, the columns kept;
- conversational datasets give prompts and completions as lists of ``{"role", "content"}``
  messages; the prompt's last user message and the completion's text are scored;
- TRL treats an ``nn.Module`` reward as a Hugging Face sequence classifier and calls it on token
  tensors, which is wrong for :class:`reward_models.ScalarRewardModel` (it scores text); the wrapper
  is a plain function, so TRL calls it with text;
- outputs are validated like the env validates them (count, numbers, NaN/inf), naming the model.

The other direction needs nothing: a TRL reward function — ``f(prompts, completions, **kwargs)``,
``f(completions, **kwargs)`` or ``f(completions, answer, **kwargs)`` — is an rlenv reward model
(``gym.make("rlenv/TextGen-v0", reward_model=f)``), since rlenv calls it as TRL does, by keyword. One difference: TRL lets a
function return ``None`` for a sample it does not apply to and leaves it out of that sample's
reward; an env has no other reward to fall back on, so rlenv rejects ``None`` with an error naming
the model. :func:`none_as` gives ``None`` an explicit value when that is what you mean.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from reward_models.base import RewardModelError, check_reward_signature, reward_name, score
from reward_models.batch import is_chat_messages

__all__ = ["TRL_BOOKKEEPING_KWARGS", "as_trl_reward", "none_as"]

TRL_BOOKKEEPING_KWARGS = frozenset({"trainer_state", "completion_ids", "log_extra", "log_metric", "environments"})


def _message_text(item: Any, who: str, what: str, index: int) -> str:
    """A standard-format text, or the text of a conversational message list."""
    if isinstance(item, str):
        return item
    if is_chat_messages(item):
        if what == "prompts":
            users = [m for m in item if m.get("role") == "user"] or list(item)
            return str(users[-1]["content"])
        return "".join(str(m["content"]) for m in item)
    raise RewardModelError(
        f"reward model {who!r}: {what}[{index}] is neither a str nor a list of {{'role', 'content'}} messages "
        f"(got {type(item).__name__})"
    )


def as_trl_reward(rm: Any, name: str | None = None, **options: Any) -> Callable[..., list[float]]:
    """Wrap ``rm`` — a registry name (with ``options``), a reward-model instance or any callable with
    our signature — as a plain function for ``trl.GRPOTrainer(reward_funcs=[...])``.

    The function's ``__name__`` (TRL's log key, e.g. ``rewards/vader/mean``) is ``name`` or the
    reward model's own name.
    """
    if isinstance(rm, str):
        from reward_models.registry import make

        rm = make(rm, **options)
    elif options:
        raise TypeError(f"options {sorted(options)} apply only when rm is a registry name; configure the instance")
    if not callable(rm):
        raise TypeError(f"as_trl_reward needs a reward model (callable) or a registry name, got {type(rm).__name__}")
    check_reward_signature(rm)
    who = name or reward_name(rm)

    def reward(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        columns = {k: v for k, v in kwargs.items() if k not in TRL_BOOKKEEPING_KWARGS}
        prompt_texts = [_message_text(p, who, "prompts", i) for i, p in enumerate(prompts)]
        completion_texts = [_message_text(c, who, "completions", i) for i, c in enumerate(completions)]
        return score(rm, prompt_texts, completion_texts, **columns).rewards

    reward.__name__ = reward.__qualname__ = who
    reward.__doc__ = f"TRL reward function scoring completions with the rlenv reward model {who!r}."
    return reward


def none_as(rm: Callable[..., Sequence[float | None]], value: float) -> Callable[..., list[float]]:
    """``rm`` with every ``None`` it returns (TRL's "not applicable") replaced by ``value``, so that a
    TRL reward function written for multi-task training can be an env's reward model.

    Keeps ``rm``'s name for logs and errors; the result is still validated wherever it is scored.
    """
    if not callable(rm):
        raise TypeError(f"none_as needs a reward function, got {type(rm).__name__}")
    check_reward_signature(rm)
    value = float(value)

    def reward(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        out = rm(prompts=prompts, completions=completions, **kwargs)
        if isinstance(out, (str, bytes)) or not isinstance(out, Sequence):
            return out  # type: ignore[return-value]  # not a list: let the scoring guard name the problem
        return [value if r is None else r for r in out]

    reward.__name__ = reward.__qualname__ = reward_name(rm)
    reward.__doc__ = f"{reward_name(rm)!r} with None read as {value}."
    return reward
