"""The reward-model registry: ``make(name, **kw)``, ``register(name, factory)``, ``available()``.

Built-ins are registered by import path and imported on first use, so ``import reward_models``
stays cheap and a missing optional extra only matters to the model that needs it.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from reward_models.base import RewardModelError


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
    if name not in _REGISTRY:
        hint = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.5)
        suggestion = f"; did you mean {' or '.join(repr(h) for h in hint)}?" if hint else ""
        raise UnknownRewardModelError(
            f"unknown reward model {name!r}{suggestion} "
            f"(available: {', '.join(available())}; add your own with reward_models.register)"
        )
    entry = _REGISTRY[name]
    return _resolve_dotted(entry.target) if isinstance(entry, _Lazy) else entry


def register(name: str, factory: Callable[..., Any], *, overwrite: bool = False) -> None:
    """Register ``factory`` (a class or function returning a reward model) under ``name``.

    Raises ``ValueError`` if the name is taken, unless ``overwrite=True``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"reward model names must be non-empty strings, got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory for {name!r} must be callable, got {type(factory).__name__}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"reward model {name!r} is already registered; pass overwrite=True to replace it")
    _REGISTRY[name] = factory


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
