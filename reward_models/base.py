"""The reward-model protocol and the guard every caller scores through.

A reward model is anything with TRL's reward-function signature::

    rm(prompts: Sequence[str], completions: Sequence[str], **kwargs) -> list[float]

``kwargs`` carries extra per-example columns (``answer``, ``references``, ...) as sequences of
the same length as ``prompts``.  A plain function qualifies.  Like TRL, :func:`score` passes every
argument by keyword (``prompts=``, ``completions=``, the columns), so TRL's idiomatic
``def reward(completions, **kwargs)`` works unchanged; :func:`check_reward_signature` refuses a
callable that cannot be called that way when it is configured, not at the first episode end.  A reward model *may* also expose
``score_with_components(prompts, completions, **kwargs) -> (list[float], dict[str, list[float]])``
to report, in the same single pass, the named parts its score is made of; the environments put
those into ``info``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class RewardModelError(ValueError):
    """A reward model broke the protocol (wrong count, NaN/inf, non-numbers) or could not be built."""


class RewardFunctionError(RewardModelError):
    """An exception raised inside a reward model while it scored a batch, re-raised naming the model
    and the batch; the original exception is chained (``__cause__``) with its traceback.

    ``prompts`` and ``completions`` hold the batch it was scoring, to reproduce the failure with.
    """

    def __init__(self, message: str, prompts: Sequence[str], completions: Sequence[str]) -> None:
        super().__init__(message)
        self.prompts = list(prompts)
        self.completions = list(completions)


def _raised_inside(who: str, err: Exception, prompts: Sequence[str], completions: Sequence[str]) -> RewardFunctionError:
    first = f"; first prompt {prompts[0][:60]!r}, completion {completions[0][:60]!r}" if completions else ""
    return RewardFunctionError(
        f"reward model {who!r} raised {type(err).__name__}: {err} while scoring a batch of {len(completions)} "
        f"completion(s){first}. Fix or guard the function (the error's .prompts and .completions hold the batch)",
        prompts, completions)


@runtime_checkable
class RewardModel(Protocol):
    """Anything that scores a batch: ``rm(prompts=[...], completions=[...], **columns)`` returns one
    float per completion (TRL's reward-function signature; extra dataset columns arrive as keywords)."""

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], **kwargs: Any) -> list[float]: ...


def reward_name(rm: Any) -> str:
    """A human-readable name for error messages and logs."""
    name = getattr(rm, "name", None)
    if isinstance(name, str) and name:
        return name
    if hasattr(rm, "__name__"):
        return rm.__name__
    return type(rm).__name__


TRL_CALL = "rm(prompts=[...], completions=[...], **columns)"
"""How rlenv (and TRL) call a reward model: every argument by keyword."""

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _signature_problem(rm: Any, columns: Collection[str] | None) -> str | None:
    """Why ``rm`` cannot be called as :data:`TRL_CALL`, or None when it can (or cannot be inspected).

    With ``columns=None`` (at construction, when the columns are not known yet) required parameters
    other than ``prompts``/``completions`` are taken to be dataset columns, as long as the callable
    names ``completions``; with ``columns`` given, each of them must be among the columns.
    """
    try:
        params = list(inspect.signature(rm).parameters.values())
    except (TypeError, ValueError):  # builtins and C callables: nothing to check
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in params) and any(p.kind is p.VAR_KEYWORD for p in params):
        return None  # (*args, **kwargs) forwards anything; its body decides
    positional_only = [p.name for p in params if p.kind is p.POSITIONAL_ONLY and p.default is p.empty]
    if positional_only:
        return f"its parameters {', '.join(positional_only)} are positional-only"
    names = {p.name for p in params if p.kind in _NAMED}
    takes_any_keyword = any(p.kind is p.VAR_KEYWORD for p in params)
    refused = [k for k in ("prompts", "completions") if k not in names and not takes_any_keyword]
    if refused:
        return f"it does not accept {' or '.join(f'{k}=' for k in refused)}"
    required = [p.name for p in params if p.kind in _NAMED and p.default is p.empty
                and p.name not in ("prompts", "completions")]
    if columns is None:
        if required and "completions" not in names:
            return (f"its required parameters {', '.join(required)} would receive nothing (the texts arrive as "
                    "prompts= and completions=)")
        return None
    missing = [name for name in required if name not in columns]
    if missing:
        have = ", ".join(sorted(columns)) or "none"
        return (f"it requires the column(s) {', '.join(missing)}, which these prompts do not have (columns: {have}); "
                "give each prompt that column, or a default to the parameter")
    return None


def check_reward_signature(rm: Any) -> None:
    """Raise :class:`RewardModelError` unless ``rm`` can be called as :data:`TRL_CALL`.

    Accepted: ``(prompts, completions, **kwargs)``, ``(completions, **kwargs)``, ``(completions, answer,
    **kwargs)`` and the like — what TRL accepts. Refused: a callable that cannot take ``prompts=`` or
    ``completions=`` by keyword, e.g. ``lambda p, c: ...``.
    """
    problem = _signature_problem(rm, None)
    if problem:
        who = reward_name(rm)
        raise RewardModelError(
            f"reward model {who!r} cannot be called as {TRL_CALL}, the way rlenv and TRL call reward "
            f"functions: {problem}. Write it as def {who}(prompts, completions, **kwargs) or "
            f"def {who}(completions, **kwargs) (dataset columns such as answer arrive as keywords)"
        )


@dataclass(frozen=True)
class ScoredBatch:
    """Validated rewards of one batch, plus any named components the model reported."""

    rewards: list[float]
    components: dict[str, list[float]] = field(default_factory=dict)


def _check_values(values: Any, n: int, who: str) -> list[float]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise RewardModelError(
            f"reward model {who!r} returned {type(values).__name__}, expected a list of {n} floats "
            "(one per completion); make it return list[float]"
        )
    if len(values) != n:
        raise RewardModelError(
            f"reward model {who!r} returned {len(values)} values for {n} completions; "
            "it must return exactly one float per completion"
        )
    out: list[float] = []
    for i, v in enumerate(values):
        if v is None:  # TRL's "not applicable": GRPOTrainer skips it, but every rlenv score is used
            raise RewardModelError(
                f"reward model {who!r} returned a non-number at index {i}: None (TRL's 'not applicable' marker, "
                "which GRPOTrainer skips; rlenv needs a number for every completion, e.g. an episode's terminal "
                "reward); return a default such as 0.0 there, or wrap it: reward_models.trl_interop.none_as(rm, 0.0)"
            )
        if isinstance(v, bool) or not isinstance(v, (int, float)) and not hasattr(v, "__float__"):
            raise RewardModelError(
                f"reward model {who!r} returned a non-number at index {i}: {v!r}; return floats"
            )
        try:
            f = float(v)
        except (TypeError, ValueError) as exc:  # e.g. a multi-element tensor
            raise RewardModelError(
                f"reward model {who!r} returned a non-number at index {i}: {v!r}; return floats"
            ) from exc
        if not math.isfinite(f):
            raise RewardModelError(
                f"reward model {who!r} returned {f} at index {i}; rewards must be finite "
                "(clip or guard the model, e.g. reward_models.Clip)"
            )
        out.append(f)
    return out


def score(rm: Any, prompts: Sequence[str], completions: Sequence[str], **kwargs: Any) -> ScoredBatch:
    """Call ``rm`` once on the whole batch and validate what it returns.

    Raises :class:`RewardModelError` naming the model and the offending index when the output has
    the wrong length, is not numeric, or is NaN/inf.
    """
    n = len(completions)
    if len(prompts) != n:
        raise ValueError(f"got {len(prompts)} prompts for {n} completions; pass one prompt per completion")
    for key, column in kwargs.items():
        if isinstance(column, (list, tuple)) and len(column) != n:
            raise ValueError(f"extra column {key!r} has {len(column)} entries for {n} completions")
    who = reward_name(rm)
    if hasattr(rm, "score_with_components"):
        try:
            raw_rewards, raw_components = rm.score_with_components(
                prompts=list(prompts), completions=list(completions), **kwargs
            )
        except RewardModelError:  # a part already named itself (WeightedSum scores its parts through here)
            raise
        except Exception as err:
            raise _raised_inside(who, err, prompts, completions) from err
        if not isinstance(raw_components, Mapping):
            raise RewardModelError(
                f"reward model {who!r}: score_with_components() must return (list[float], dict[str, list[float]])"
            )
        components = {str(k): _check_values(v, n, f"{who}.{k}") for k, v in raw_components.items()}
    else:
        try:
            raw_rewards, components = rm(prompts=list(prompts), completions=list(completions), **kwargs), {}
        except TypeError as err:
            problem = _signature_problem(rm, kwargs.keys())
            if problem is None:  # raised inside the model: its own bug, chained with its traceback
                raise _raised_inside(who, err, prompts, completions) from err
            raise RewardModelError(f"reward model {who!r} cannot be called as {TRL_CALL}: {problem}") from err
        except RewardModelError:
            raise
        except Exception as err:
            raise _raised_inside(who, err, prompts, completions) from err
    return ScoredBatch(rewards=_check_values(raw_rewards, n, who), components=components)
