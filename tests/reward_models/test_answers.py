"""exact_match / numeric / reasoning_gym answer checking."""

from __future__ import annotations

import pytest
import reasoning_gym

from reward_models import RewardModelError, make, score
from reward_models.answers import ExactMatch, NumericMatch, normalize_answer, parse_number
from reward_models.reasoning import ReasoningGymScorer, extract_tagged_answer


def run(rm, completions, **kwargs):
    return score(rm, ["Q"] * len(completions), completions, **kwargs).rewards


@pytest.mark.parametrize(
    ("text", "expected"),
    [("19", 19.0), (" 19.", 19.0), ("= 19", 19.0), ("-3", -3.0), ("1,000", 1000.0), ("3.50", 3.5),
     ("The answer is 12 apples.", 12.0), ("−7", -7.0), ("no digits", None)],
)  # fmt: skip
def test_parse_number(text, expected):
    assert parse_number(text) == expected


def test_first_vs_last_number():
    assert parse_number("3 + 4 = 7", "first") == 3.0
    assert parse_number("3 + 4 = 7", "last") == 7.0


class TestNumeric:
    def test_indicator_against_answer_column(self):
        completions = ["19", " 19.", "= 19", "18", "nineteen", "the total is 1,000", "3.50"]
        answers = [19, "19", 19.0, 19, 19, 1000, "3.5"]
        assert run(NumericMatch(), completions, answer=answers) == [1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]

    def test_tolerance(self):
        assert run(NumericMatch(abs_tol=0.01), ["3.14", "3.2"], answer=[3.1416, 3.1416]) == [1.0, 0.0]
        assert run(NumericMatch(abs_tol=1e-3), ["3.14"], answer=[3.1416]) == [0.0]
        assert run(NumericMatch(rel_tol=0.01), ["101"], answer=[100]) == [1.0]

    def test_missing_answer_says_pass_answer(self):
        with pytest.raises(
            RewardModelError, match=r"'numeric' needs the per-example column 'answer': pass answer="
        ):
            run(make("numeric"), ["19"])

    def test_non_numeric_answer_is_named(self):
        with pytest.raises(RewardModelError, match=r"answer\[1\] = 'abc' is not a number"):
            run(NumericMatch(), ["1", "2"], answer=[1, "abc"])

    def test_wrong_length_column(self):
        with pytest.raises((RewardModelError, ValueError), match="has 1 entries for 2 completions"):
            run(NumericMatch(), ["1", "2"], answer=[1])

    def test_extra_columns_are_ignored(self):
        assert run(NumericMatch(), ["5"], answer=[5], trainer_state=[None]) == [1.0]


class TestExactMatch:
    def test_normalised_equality(self):
        completions = ["Paris", "  paris. ", "PARIS!", "Paris, France", "London"]
        assert run(ExactMatch(), completions, answer=["Paris"] * 5) == [1.0, 1.0, 1.0, 0.0, 0.0]

    def test_strict_mode_and_multiple_answers(self):
        assert run(ExactMatch(normalize=False), ["Paris", "paris"], answer=["Paris", "Paris"]) == [1.0, 0.0]
        assert run(ExactMatch(), ["NYC"], answer=[["New York", "nyc"]]) == [1.0]
        assert run(ExactMatch(), ["42"], answer=[42]) == [1.0]

    def test_normalize_answer(self):
        assert normalize_answer('  "Hello   World!" ') == "hello world"

    def test_missing_answer(self):
        with pytest.raises(RewardModelError, match="pass answer="):
            run(ExactMatch(), ["x"])


class TestReasoningGym:
    def test_scores_with_reasoning_gyms_own_scorer(self):
        data = reasoning_gym.create_dataset("leg_counting", seed=3, size=4)
        entries = [data[i] for i in range(4)]
        right = [e["answer"] for e in entries[:2]]
        wrong = [str(int(e["answer"]) + 1) for e in entries[2:]]
        rm = make("reasoning_gym", task="leg_counting")
        rewards = run(rm, right + wrong, entry=entries)
        assert rewards == [data.score_answer(a, e) for a, e in zip(right + wrong, entries, strict=True)]
        assert rewards == [1.0, 1.0, 0.0, 0.0]

    def test_answer_tag_is_extracted(self):
        data = reasoning_gym.create_dataset("leg_counting", seed=1, size=1)
        completion = f"<think>count legs</think>\n<answer>{data[0]['answer']}</answer>"
        assert run(ReasoningGymScorer("leg_counting"), [completion], entry=[data[0]]) == [1.0]
        [raw] = run(ReasoningGymScorer("leg_counting", extract_answer=False), [completion], entry=[data[0]])
        assert raw < 1.0  # the tags and reasoning are scored as part of the answer
        assert extract_tagged_answer("no tags ") == "no tags"

    def test_unknown_task_suggests(self):
        with pytest.raises(RewardModelError, match="did you mean 'leg_counting'"):
            ReasoningGymScorer("leg_countin")

    def test_entry_column_required_and_checked(self):
        rm = ReasoningGymScorer("leg_counting")
        with pytest.raises(RewardModelError, match="pass entry="):
            run(rm, ["4"])
        with pytest.raises(RewardModelError, match=r"entry\[0\] must be a reasoning-gym entry"):
            run(rm, ["4"], entry=["4"])


def test_numeric_partial_width_credits_near_answers_linearly() -> None:
    rm = NumericMatch(which="first", partial_width=10)
    got = rm(prompts=["4+5="] * 5, completions=["9", "11", "14", "41", "none"], answer=[9] * 5)
    assert got == pytest.approx([1.0, 0.8, 0.5, 0.0, 0.0])
    assert NumericMatch(which="first")(prompts=["p"], completions=["11"], answer=[9]) == [0.0]  # off by default
    with pytest.raises(RewardModelError, match="partial_width must be > 0"):
        NumericMatch(partial_width=0)
