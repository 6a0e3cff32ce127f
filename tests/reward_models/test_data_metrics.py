"""Training-data schemas (errors name file and line), the split, metrics, and the repo's datasets."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reward_models import metrics
from reward_models.data import (
    LabelledText,
    PreferencePair,
    RMDataError,
    ScoredText,
    label_names,
    load_examples,
    train_val_split,
)
from reward_models.datasets import arithmetic_dataset, preference_pairs, sentiment_dataset, write_jsonl


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_jsonl_schemas(tmp_path):
    mse = write(
        tmp_path,
        "a.jsonl",
        '{"text": "good", "score": 0.5}\n\n{"prompt": "Q: ", "completion": "A", "score": 1}\n',
    )
    assert load_examples(mse, "mse") == [ScoredText("good", 0.5), ScoredText("Q: A", 1.0)]
    ce = write(tmp_path, "b.jsonl", '{"text": "x", "label": "pos"}\n{"text": "y", "label": 2}\n')
    assert load_examples(ce, "ce") == [LabelledText("x", "pos"), LabelledText("y", "2")]
    bt = write(tmp_path, "c.jsonl", '{"prompt": "P ", "chosen": "a", "rejected": "b", "margin": 0.5}\n')
    assert load_examples(bt, "bt") == [PreferencePair("P a", "P b", 0.5)]


def test_csv_schemas(tmp_path):
    mse = write(tmp_path, "a.csv", 'text,score\n"good, really",0.5\nbad,-1\n')
    assert load_examples(mse, "mse") == [ScoredText("good, really", 0.5), ScoredText("bad", -1.0)]
    bt = write(tmp_path, "b.csv", "chosen,rejected\nyes,no\n")
    assert load_examples(bt, "bt") == [PreferencePair("yes", "no", 0.0)]


@pytest.mark.parametrize(
    ("name", "content", "loss", "message"),
    [
        (
            "missing.jsonl",
            '{"text": "a", "score": 1}\n{"text": "b"}\n',
            "mse",
            r"missing.jsonl:2: missing key 'score'",
        ),
        ("type.jsonl", '{"text": 3, "score": 1}\n', "mse", r"type.jsonl:1: 'text' must be a string, got int"),
        (
            "nan.jsonl",
            '{"text": "a", "score": NaN}\n',
            "mse",
            r"nan.jsonl:1: 'score' must be a finite number",
        ),
        (
            "bool.jsonl",
            '{"text": "a", "score": true}\n',
            "mse",
            r"bool.jsonl:1: 'score' must be a finite number",
        ),
        ("bad.jsonl", '{"text": "a", "score": 1}\n{"text": "a", \n', "mse", r"bad.jsonl:2: malformed JSON"),
        ("list.jsonl", '["a", 1]\n', "mse", r"list.jsonl:1: expected a JSON object"),
        ("empty.jsonl", "\n\n", "mse", r"empty.jsonl is empty"),
        (
            "nolabel.jsonl",
            '{"text": "a"}\n',
            "ce",
            r"nolabel.jsonl:1: missing key 'label'.*schema for --loss ce",
        ),
        ("pair.jsonl", '{"chosen": "a"}\n', "bt", r"pair.jsonl:1: missing key 'rejected'"),
        (
            "score.csv",
            "text,score\na,1\nb,high\n",
            "mse",
            r"score.csv:3: 'score' must be a number, got 'high'",
        ),
        (
            "notext.csv",
            "body,score\na,1\n",
            "mse",
            r"notext.csv:2: missing key 'text' \(or 'prompt' and 'completion'\)",
        ),
        ("data.txt", "a\n", "mse", r"unsupported extension '.txt'"),
    ],
)
def test_schema_errors_name_file_and_line(tmp_path, name, content, loss, message):
    with pytest.raises(RMDataError, match=message):
        load_examples(write(tmp_path, name, content), loss)


def test_missing_file_and_unknown_loss(tmp_path):
    with pytest.raises(RMDataError, match="does not exist"):
        load_examples(tmp_path / "nope.jsonl", "mse")
    with pytest.raises(RMDataError, match="unknown loss 'l1'"):
        load_examples(write(tmp_path, "a.jsonl", "{}\n"), "l1")


def test_split_is_seeded_disjoint_and_complete():
    items = list(range(50))
    train, val = train_val_split(items, 0.2, seed=1)
    assert len(val) == 10 and sorted(train + val) == items
    assert train_val_split(items, 0.2, seed=1) == (train, val)
    assert train_val_split(items, 0.2, seed=2) != (train, val)
    with pytest.raises(RMDataError, match=r"val_fraction must be in \(0, 1\)"):
        train_val_split(items, 1.0, seed=0)


def test_label_names_sort_numerically():
    assert label_names([LabelledText("a", "10"), LabelledText("b", "2")]) == ["2", "10"]
    assert label_names([LabelledText("a", "pos"), LabelledText("b", "neg")]) == ["neg", "pos"]


def test_metrics_by_hand():
    assert metrics.mse([1, 2], [1, 4]) == 2.0
    assert metrics.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert metrics.pearson([1, 2, 3], [5, 5, 5]) == 0.0
    assert metrics.spearman([1, 2, 3, 4], [1, 10, 100, 1000]) == pytest.approx(1.0)
    assert metrics.rankdata([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]
    assert metrics.accuracy([0, 1, 1], [0, 1, 0]) == pytest.approx(2 / 3)
    assert metrics.pairwise_accuracy([1, 2, 3], [0, 2, 4]) == pytest.approx(0.5)


@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=3, max_size=30), st.randoms())
def test_spearman_matches_pearson_of_numpy_ranks(values, rnd):
    other = values[:]
    rnd.shuffle(other)
    rank = lambda v: np.argsort(np.argsort(v, kind="stable"), kind="stable")  # noqa: E731
    if len(set(values)) == len(values):  # without ties the ordinal ranks are the ranks
        assert metrics.spearman(values, other) == pytest.approx(
            metrics.pearson(rank(values), rank(other)), abs=1e-9
        )
    assert -1.0 - 1e-9 <= metrics.spearman(values, other) <= 1.0 + 1e-9


def test_sentiment_dataset_is_deterministic_and_varied():
    a, b = sentiment_dataset(200, seed=3), sentiment_dataset(200, seed=3)
    assert a == b and a != sentiment_dataset(200, seed=4)
    labels = {e.label for e in a}
    assert labels == {"positive", "negative", "neutral"}
    assert len({e.text for e in a}) > 150
    assert all(-1.0 <= e.score <= 1.0 for e in a)


def test_preference_pairs_prefer_the_more_positive():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    vader = SentimentIntensityAnalyzer()
    pairs = preference_pairs(30, seed=0)
    assert pairs == preference_pairs(30, seed=0)
    gaps = [
        vader.polarity_scores(p["chosen"])["compound"] - vader.polarity_scores(p["rejected"])["compound"]
        for p in pairs
    ]
    assert min(gaps) >= 0.1


def test_arithmetic_dataset_labels_are_true(tmp_path):
    rows = arithmetic_dataset(100, seed=0)
    for row in rows:
        lhs, rhs = row["text"].split(" = ")
        assert (eval(lhs) == int(rhs)) == (row["label"] == "right")  # noqa: S307 - our own "a + b"
    assert 30 < sum(r["label"] == "right" for r in rows) < 70
    path = write_jsonl(rows, tmp_path / "sub" / "arith.jsonl")
    assert [json.loads(line) for line in path.read_text().splitlines()] == rows
    assert load_examples(path, "ce")[0].label in ("right", "wrong")
