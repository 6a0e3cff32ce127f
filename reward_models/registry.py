"""The reward-model registry: ``make(name, **kw)``, ``register(name, factory_or_fn)``, ``available()``.

Built-ins are registered by import path and imported on first use, so ``import reward_models``
stays cheap and a missing optional extra only matters to the model that needs it. Wherever a name
is accepted, so is an import path of the user's own function, ``"my_module:fn"`` or
``"path/to/file.py:fn"`` (:mod:`reward_models.imports`): a string that a saved run can name again.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from reward_models.base import RewardModelError, check_reward_signature
from reward_models.imports import FORM, is_import_path, is_reward_function, load_object


class UnknownRewardModelError(RewardModelError, KeyError):
    """No reward model is registered under the requested name (a ``KeyError`` and a ``ValueError``)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class _Lazy:
    """A factory given as ``"module:attr"``, imported the first time it is used."""

    def __init__(self, target: str) -> None:
        self.target = target


_BUILTINS: dict[str, str] = {
    "vader": "reward_models.sentiment:VaderSentiment",
    "keyword": "reward_models.text_rules:KeywordReward",
    "regex": "reward_models.text_rules:RegexReward",
    "format": "reward_models.text_rules:FormatReward",
    "length": "reward_models.text_rules:LengthReward",
    "exact_match": "reward_models.answers:ExactMatch",
    "numeric": "reward_models.answers:NumericMatch",
    "reasoning_gym": "reward_models.reasoning:ReasoningGymScorer",
    "bleu": "reward_models.references:BleuReward",
    "chrf": "reward_models.references:ChrfReward",
    "ter": "reward_models.references:TerReward",
    "rouge": "reward_models.references:RougeReward",
    "embedding_similarity": "reward_models.embedding:EmbeddingSimilarity",
    "classifier": "reward_models.classifier:ClassifierReward",
    "learned": "reward_models.learned:ScalarRewardModel.from_pretrained",
}

# The one piece of module-level mutable state: name -> factory (or lazy import path).
_REGISTRY: dict[str, Callable[..., Any] | _Lazy] = {name: _Lazy(path) for name, path in _BUILTINS.items()}


def _resolve_dotted(target: str) -> Callable[..., Any]:
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _factory(name: str) -> Callable[..., Any]:
    if is_import_path(name):
        return _as_factory(load_object(name))
    if name not in _REGISTRY:
        hint = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.5)
        suggestion = f"; did you mean {' or '.join(repr(h) for h in hint)}?" if hint else ""
        raise UnknownRewardModelError(
            f"unknown reward model {name!r}{suggestion} "
            f"(available: {', '.join(available())}; name your own function by import path, {FORM}, or "
            "register it with reward_models.register in the process that uses it)"
        )
    entry = _REGISTRY[name]
    return _resolve_dotted(entry.target) if isinstance(entry, _Lazy) else entry


def _as_factory(obj: Callable[..., Any]) -> Callable[..., Any]:
    """``obj`` itself if it builds reward models; a reward function becomes a factory without options
    that returns it (so ``make(name)`` gives back the function, and ``make(name, x=1)`` is refused)."""
    if not is_reward_function(obj):
        return obj
    check_reward_signature(obj)  # a wrong signature fails when it is named, not at the first episode end

    def reward_function() -> Callable[..., Any]:
        return obj

    reward_function.__doc__ = inspect.getdoc(obj) or f"the reward function {getattr(obj, '__name__', obj)!r}"
    return reward_function


def register(name: str, factory: Callable[..., Any], *, overwrite: bool = False) -> None:
    """Register a reward model under ``name``: either a reward function itself (TRL's signature,
    ``fn(completions, **kwargs)`` or ``fn(prompts, completions, **kwargs)``) or a ``factory`` (a class or
    function of options that returns one). ``make(name)`` then returns the function, or
    ``factory(**options)``.

    The registry lives in this process: a run started from the command line (or resumed there) finds
    the function by import path instead, ``"my_module:fn"`` or ``"file.py:fn"``.
    Raises ``ValueError`` if the name is taken, unless ``overwrite=True``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"reward model names must be non-empty strings, got {name!r}")
    if is_import_path(name):
        raise ValueError(
            f"reward model names cannot contain ':' ({name!r}); ':' marks an import path, {FORM}"
        )
    if not callable(factory):
        raise TypeError(f"factory for {name!r} must be callable, got {type(factory).__name__}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"reward model {name!r} is already registered; pass overwrite=True to replace it")
    _REGISTRY[name] = _as_factory(factory)


def available() -> list[str]:
    """Every registered reward-model name, sorted."""
    return sorted(_REGISTRY)


def describe(name: str) -> str:
    """The one-line summary of the reward model registered as ``name`` (first line of its docstring)."""
    factory = _factory(name)
    owner = getattr(factory, "__self__", None)  # a classmethod constructor: describe its class
    doc = inspect.getdoc(owner if isinstance(owner, type) else factory) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def make(name: str, **kwargs: Any) -> Any:
    """Build the reward model registered as ``name`` with ``kwargs``.

    Unknown names raise :class:`UnknownRewardModelError` suggesting close matches; unknown keyword
    arguments raise :class:`RewardModelError` listing the accepted ones.
    """
    factory = _factory(name)
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        params = None
    if params is not None and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        accepted = [p for p, v in params.items() if v.kind in (v.POSITIONAL_OR_KEYWORD, v.KEYWORD_ONLY)]
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown:
            raise RewardModelError(
                f"reward model {name!r} does not accept {', '.join(map(repr, unknown))}; "
                f"its options are: {', '.join(accepted) or '(none)'}"
            )
    return factory(**kwargs)
