"""BLEU / chrF / TER / ROUGE against references, and VADER sentiment, on real sentences."""

from __future__ import annotations

import pytest

from reward_models import RewardModelError, make, score

REF = "The quick brown fox jumps over the lazy dog."
CLOSE = "The quick brown fox leaped over a lazy dog."
FAR = "Stock prices fell sharply on Monday morning."


def run(rm, completions, **kwargs):
    return score(rm, [""] * len(completions), completions, **kwargs).rewards


@pytest.mark.parametrize("name", ["bleu", "chrf", "rouge"])
def test_reference_metrics_rank_and_range(name):
    exact, close, far = run(make(name), [REF, CLOSE, FAR], references=[REF, REF, [REF]])
    assert exact == pytest.approx(1.0)
    assert exact > close > far >= 0.0


def test_ter_is_higher_better_and_zero_when_exact():
    exact, close, far = run(make("ter"), [REF, CLOSE, FAR], references=[REF] * 3)
    assert exact == pytest.approx(0.0)
    assert exact > close > far


def test_multiple_references_take_the_best():
    rm = make("bleu")
    [single] = run(rm, [CLOSE], references=[[FAR]])
    [multi] = run(rm, [CLOSE], references=[[FAR, REF]])
    assert multi > single


def test_rouge_variants_differ():
    text, ref = "the cat sat on the mat", "the mat had the cat on it"
    r1, r2 = (run(make("rouge", variant=v), [text], references=[ref])[0] for v in ("rouge1", "rouge2"))
    assert r1 > r2 > 0.0
    with pytest.raises(RewardModelError, match="variant must be"):
        make("rouge", variant="rouge9")


def test_fixed_references_and_missing_column():
    assert run(make("chrf", references=REF), [REF]) == [pytest.approx(1.0)]
    with pytest.raises(RewardModelError, match=r"'bleu' needs the per-example column 'references'"):
        run(make("bleu"), [REF])
    with pytest.raises(RewardModelError, match=r"references'\[0\] must be a str or a non-empty list of str"):
        run(make("bleu"), [REF], references=[[]])


def test_vader_compound_on_real_reviews():
    rm = make("vader")
    good, bad, flat = run(
        rm, ["What a wonderful, delightful film!", "Terrible, boring and awful.", "It is a film."]
    )
    assert good > 0.5 and bad < -0.5 and flat == pytest.approx(0.0)
    assert all(-1.0 <= r <= 1.0 for r in (good, bad, flat))


def test_vader_scores_only_the_completion_by_default():
    rm = make("vader")
    prompts, completions = ["I hated it. "], ["The weather is mild."]
    assert rm(prompts, completions) == [0.0]
    assert make("vader", include_prompt=True)(prompts, completions)[0] < 0
    assert make("vader", field="pos")(prompts, ["great!"])[0] > 0.5
