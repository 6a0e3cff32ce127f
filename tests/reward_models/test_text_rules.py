"""keyword / regex / format / length on real text, and their input guards."""

from __future__ import annotations

import re

import pytest

from reward_models import RewardModelError, make, score
from reward_models.text_rules import FormatReward, KeywordReward, LengthReward, RegexReward


def run(rm, completions, **kwargs):
    return score(rm, [""] * len(completions), completions, **kwargs).rewards


class TestKeyword:
    def test_any_case_insensitive_on_word_boundaries(self):
        rm = KeywordReward("great")
        assert run(rm, ["What a GREAT film", "greatest ever", "ungreat", "great."]) == [1.0, 0.0, 0.0, 1.0]

    def test_all_and_fraction(self):
        texts = ["the cat and the dog", "the cat alone", "nothing here"]
        assert run(KeywordReward(["cat", "dog"], mode="all"), texts) == [1.0, 0.0, 0.0]
        assert run(KeywordReward(["cat", "dog"], mode="any"), texts) == [1.0, 1.0, 0.0]
        assert run(KeywordReward(["cat", "dog"], mode="fraction"), texts) == [1.0, 0.5, 0.0]

    def test_keyword_with_punctuation(self):
        assert run(KeywordReward("c++"), ["I write C++ daily", "I write c+ daily"]) == [1.0, 0.0]

    def test_per_example_column(self):
        rm = KeywordReward()
        rewards = run(
            rm, ["I love Paris", "I love Paris", "rome and oslo"], keyword=["paris", "rome", ["oslo", "x"]]
        )
        assert rewards == [1.0, 0.0, 1.0]

    def test_length_budget_penalty(self):
        rm = KeywordReward("yes", max_words=3, length_penalty=0.1)
        assert run(rm, ["yes it is", "yes it is a very long answer"]) == pytest.approx([1.0, 0.6])

    def test_missing_column_says_to_pass_it(self):
        with pytest.raises(
            RewardModelError, match=r"needs the per-example column 'keyword': pass keyword=\["
        ):
            run(KeywordReward(), ["text"])

    def test_bad_options(self):
        with pytest.raises(RewardModelError, match="mode must be"):
            KeywordReward("a", mode="some")
        with pytest.raises(RewardModelError, match="non-empty"):
            KeywordReward(["a", " "])


class TestRegex:
    def test_match_and_count(self):
        texts = ["call 555-1234 or 555-9876", "no phone", "555-0000"]
        assert run(RegexReward(r"\d{3}-\d{4}"), texts) == [1.0, 0.0, 1.0]
        assert run(RegexReward(r"\d{3}-\d{4}", mode="count"), texts) == [2.0, 0.0, 1.0]
        assert run(RegexReward(r"\d{3}-\d{4}", mode="count", max_count=1), texts) == [1.0, 0.0, 1.0]

    def test_flags(self):
        assert run(RegexReward("hello", flags=re.IGNORECASE), ["HeLLo there"]) == [1.0]

    def test_invalid_pattern_is_named(self):
        with pytest.raises(RewardModelError, match=r"invalid regular expression '\(unclosed'"):
            RegexReward("(unclosed")


class TestFormat:
    def test_think_answer_preset(self):
        rm = FormatReward("think_answer")
        good = "<think>2+2 is 4</think>\n<answer>4</answer>"
        assert run(rm, [good, "  " + good + "\n", "<answer>4</answer>", good + " trailing"]) == [
            1.0,
            1.0,
            0.0,
            0.0,
        ]

    def test_custom_pattern_must_match_fully(self):
        rm = make("format", pattern=r"[A-Z][a-z]+\.")
        assert run(rm, ["Hello.", "Hello. World.", "hello."]) == [1.0, 0.0, 0.0]


class TestLength:
    def test_target_in_words_peaks_at_target(self):
        rm = LengthReward(target=4)
        rewards = run(rm, ["one two three four", "one two", "one two three four five six", "x " * 20])
        assert rewards == pytest.approx([1.0, 0.5, 0.5, 0.0])

    def test_target_in_chars_with_tolerance(self):
        rm = LengthReward(target=10, unit="chars", tolerance=5)
        assert run(rm, ["a" * 10, "a" * 12, "a" * 30]) == pytest.approx([1.0, 0.6, 0.0])

    def test_linear_up_to_cap(self):
        rm = LengthReward(mode="linear", cap=4)
        assert run(rm, ["", "a b", "a b c d", "a b c d e f"]) == pytest.approx([0.0, 0.5, 1.0, 1.0])

    def test_tokens_need_a_tokenizer(self, word_tokenizer):
        with pytest.raises(RewardModelError, match="needs tokenizer="):
            LengthReward(target=3, unit="tokens")
        rm = LengthReward(target=3, unit="tokens", tokenizer=word_tokenizer)
        assert run(rm, ["the movie was", "the movie"]) == pytest.approx([1.0, 2 / 3])

    def test_bad_options(self):
        with pytest.raises(RewardModelError, match="needs target="):
            LengthReward()
        with pytest.raises(RewardModelError, match="needs cap="):
            LengthReward(mode="linear")


def test_completions_must_be_strings():
    with pytest.raises(RewardModelError, match=r"completions\[1\] is int, expected str"):
        KeywordReward("a")(["p", "p"], ["a", 3])
    with pytest.raises(RewardModelError, match="must be a list of str"):
        KeywordReward("a")("p", "a")


def test_fuzzy_keyword_gives_near_misses_partial_credit() -> None:
    rm = KeywordReward(["civic"], fuzzy=True)
    exact, near, far, empty = rm(prompts=["p"] * 4, completions=["a civic duty", "a civil duty", "zzz qqq", ""])
    assert exact == 1.0 and 0.5 < near < 1.0 and far == 0.0 and empty == 0.0
    assert near == pytest.approx(0.8)  # difflib ratio of civic/civil: 2 * 4 / 10
    assert KeywordReward(["civic"])(prompts=["p"], completions=["a civil duty"]) == [0.0]  # off by default
