"""Rule-based rewards on the completion's surface: keywords, regular expressions, format, length."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal

from reward_models.base import RewardModelError
from reward_models.batch import BatchReward, column, text_list


def _compile(who: str, pattern: str, flags: int) -> re.Pattern[str]:
    if not isinstance(pattern, str) or not pattern:
        raise RewardModelError(
            f"{who}: pattern must be a non-empty regular expression string, got {pattern!r}"
        )
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise RewardModelError(
            f"{who}: invalid regular expression {pattern!r}: {exc}; fix the pattern"
        ) from exc


def _word_pattern(word: str) -> re.Pattern[str]:
    # Lookarounds instead of \b so that words starting/ending in punctuation ("c++") still match.
    return re.compile(r"(?<!\w)" + re.escape(word) + r"(?!\w)", re.IGNORECASE)


def count_words(text: str) -> int:
    """Number of whitespace-separated words in ``text``."""
    return len(text.split())


class KeywordReward(BatchReward):
    """Contains the required word(s), case-insensitive on word boundaries: 1.0/0.0 (or a fraction).

    ``mode="any"``: 1.0 if any keyword occurs; ``"all"``: 1.0 if all occur; ``"fraction"``: the share
    of keywords present, in [0, 1]. Keywords come from ``keywords=`` or, per example, from the kwarg
    column named ``column`` (default ``keyword``; each entry a str or list of str). With ``max_words``
    set, each word beyond the budget costs ``length_penalty`` (so the reward can go below 0).

    ``fuzzy=True`` gives a missing keyword partial credit: the best character similarity
    (``difflib.SequenceMatcher.ratio``, in [0, 1)) between it and any word of the completion, so
    near-misses ("civil" for "civic") earn more than unrelated text and a small model that rarely
    writes the exact word still gets a learning signal.
    """

    name = "keyword"

    def __init__(
        self,
        keywords: str | Sequence[str] | None = None,
        mode: Literal["any", "all", "fraction"] = "any",
        column: str = "keyword",
        max_words: int | None = None,
        length_penalty: float = 0.01,
        fuzzy: bool = False,
    ) -> None:
        if mode not in ("any", "all", "fraction"):
            raise RewardModelError(f"keyword: mode must be 'any', 'all' or 'fraction', got {mode!r}")
        if max_words is not None and max_words < 0:
            raise RewardModelError(f"keyword: max_words must be >= 0 or None, got {max_words}")
        if length_penalty < 0:
            raise RewardModelError(f"keyword: length_penalty must be >= 0, got {length_penalty}")
        self.keywords = None if keywords is None else text_list(self.name, keywords, "keywords")
        if self.keywords is not None and not all(k.strip() for k in self.keywords):
            raise RewardModelError("keyword: keywords must be non-empty strings")
        self.mode = mode
        self.column = column
        self.max_words = max_words
        self.length_penalty = length_penalty
        self.fuzzy = fuzzy

    def _hit(self, word: str, text: str) -> float:
        if _word_pattern(word).search(text):
            return 1.0
        if not self.fuzzy:
            return 0.0
        tokens = re.findall(r"\w+", text.lower())
        return max((difflib.SequenceMatcher(None, word.lower(), t).ratio() for t in tokens), default=0.0)

    def _hit_score(self, words: list[str], text: str) -> float:
        hits = [self._hit(w.strip(), text) for w in words]
        if self.mode == "any":
            return max(hits)
        if self.mode == "all":
            return min(hits)
        return sum(hits) / len(hits)

    def score_batch(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        if self.keywords is not None:
            per_example = [self.keywords] * len(completions)
        else:
            entries = column(self.name, kwargs, self.column, len(completions), example="'word'")
            per_example = [
                text_list(self.name, e, f"column {self.column!r}", i) for i, e in enumerate(entries)
            ]
        rewards = []
        for words, text in zip(per_example, completions, strict=True):
            reward = self._hit_score(words, text)
            if self.max_words is not None:
                reward -= self.length_penalty * max(0, count_words(text) - self.max_words)
            rewards.append(reward)
        return rewards


class RegexReward(BatchReward):
    """Regular-expression match in the completion: 1.0 if found else 0.0, or the number of matches.

    ``mode="match"`` gives 1.0/0.0 (``re.search``); ``mode="count"`` gives the count of
    non-overlapping matches, capped at ``max_count`` when set.
    """

    name = "regex"

    def __init__(
        self,
        pattern: str,
        mode: Literal["match", "count"] = "match",
        flags: int = 0,
        max_count: int | None = None,
    ) -> None:
        if mode not in ("match", "count"):
            raise RewardModelError(f"regex: mode must be 'match' or 'count', got {mode!r}")
        self.pattern = _compile(self.name, pattern, flags)
        self.mode = mode
        self.max_count = max_count

    def score_batch(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        if self.mode == "match":
            return [float(self.pattern.search(c) is not None) for c in completions]
        counts = [sum(1 for _ in self.pattern.finditer(c)) for c in completions]
        cap = self.max_count
        return [float(min(n, cap) if cap is not None else n) for n in counts]


FORMAT_PRESETS: dict[str, str] = {
    # Reasoning then answer, as in DeepSeek-R1-style format rewards.
    "think_answer": r"<think>.*?</think>\s*<answer>.*?</answer>",
    "answer_tag": r".*<answer>.*?</answer>.*",
    "number": r"-?\d+(?:\.\d+)?",
    "one_line": r"[^\n]*",
}


class FormatReward(BatchReward):
    """Completion matches a required format in full: 1.0 if it does, else 0.0.

    ``pattern`` is a regular expression that must match the whole (stripped, with ``strip=True``)
    completion, or the name of a preset in ``FORMAT_PRESETS`` (``think_answer``, ``answer_tag``,
    ``number``, ``one_line``). ``.`` matches newlines (DOTALL) unless ``flags`` say otherwise.
    """

    name = "format"

    def __init__(self, pattern: str = "think_answer", flags: int = re.DOTALL, strip: bool = True) -> None:
        self.pattern = _compile(self.name, FORMAT_PRESETS.get(pattern, pattern), flags)
        self.strip = strip

    def score_batch(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        texts = [c.strip() for c in completions] if self.strip else completions
        return [float(self.pattern.fullmatch(t) is not None) for t in texts]


class LengthReward(BatchReward):
    """Length of the completion: 1.0 at the target falling linearly to 0.0, or linear up to a cap.

    ``mode="target"``: ``max(0, 1 - |L - target| / tolerance)`` in [0, 1] (``tolerance`` defaults to
    ``target``). ``mode="linear"``: ``min(L, cap) / cap`` in [0, 1]. ``L`` counts ``unit``: words,
    chars, or tokens (then pass ``tokenizer=``, anything with ``encode(text) -> list``).
    """

    name = "length"

    def __init__(
        self,
        target: int | None = None,
        mode: Literal["target", "linear"] = "target",
        unit: Literal["words", "chars", "tokens"] = "words",
        tolerance: float | None = None,
        cap: int | None = None,
        tokenizer: Any = None,
    ) -> None:
        if mode == "target":
            if target is None or target <= 0:
                raise RewardModelError(f"length: mode='target' needs target= > 0, got {target!r}")
            self._scale = float(tolerance if tolerance is not None else target)
            if self._scale <= 0:
                raise RewardModelError(f"length: tolerance must be > 0, got {tolerance}")
        elif mode == "linear":
            if cap is None or cap <= 0:
                raise RewardModelError(
                    f"length: mode='linear' needs cap= > 0 (the length earning 1.0), got {cap!r}"
                )
        else:
            raise RewardModelError(f"length: mode must be 'target' or 'linear', got {mode!r}")
        counters: dict[str, Callable[[str], int]] = {"words": count_words, "chars": len}
        if unit == "tokens":
            if tokenizer is None or not hasattr(tokenizer, "encode"):
                raise RewardModelError(
                    "length: unit='tokens' needs tokenizer= (an object with .encode(text))"
                )
            counters["tokens"] = lambda text: len(tokenizer.encode(text, add_special_tokens=False))
        if unit not in counters:
            raise RewardModelError(f"length: unit must be 'words', 'chars' or 'tokens', got {unit!r}")
        self._count = counters[unit]
        self.target, self.mode, self.unit, self.cap = target, mode, unit, cap

    def score_batch(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        lengths = [self._count(c) for c in completions]
        if self.mode == "linear":
            assert self.cap is not None
            return [min(n, self.cap) / self.cap for n in lengths]
        assert self.target is not None
        return [max(0.0, 1.0 - abs(n - self.target) / self._scale) for n in lengths]
