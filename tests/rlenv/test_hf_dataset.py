"""rlenv.hf_dataset: a task's prompts (with their reward columns) as a datasets.Dataset for TRL."""

from __future__ import annotations

import json

import pytest

from rlenv.hf_dataset import prompt_dataset, prompt_records, task_reward


def test_list_source_keeps_order_and_n():
    assert prompt_records(["a", "b", "c"]) == [{"prompt": "a"}, {"prompt": "b"}, {"prompt": "c"}]
    assert prompt_records(["a", "b", "c"], n=2) == [{"prompt": "a"}, {"prompt": "b"}]


def test_jsonl_extra_columns_become_dataset_columns(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "2+2=", "answer": "4"}) + "\n" + json.dumps({"prompt": "hi"}) + "\n")
    ds = prompt_dataset(str(path))
    assert ds.column_names == ["prompt", "answer"]
    assert ds["answer"] == ["4", None]


def test_a_column_of_mixed_types_names_the_column_and_the_fix():
    with pytest.raises(ValueError, match=r"\{'answer': \['int', 'str'\]\} mixes several.*same type"):
        prompt_dataset([{"prompt": "2+2=", "answer": 4}, {"prompt": "hi", "answer": "x"}])


def test_named_task_with_a_prompt_file_gives_the_whole_split():
    from rlenv.assets import DATA_DIR

    lines = (DATA_DIR / "review_prompts.txt").read_text().splitlines()
    records = prompt_records("rlenv/PositiveReview-v0")  # the train split, as the env trains on
    assert [r["prompt"] for r in records] == [p for i, p in enumerate(lines) if i % 5 != 4]
    held = prompt_records("rlenv/PositiveReview-v0", split="heldout")
    assert [r["prompt"] for r in held] == lines[4::5]
    keyword = prompt_dataset("rlenv/Keyword-v0", n=5)
    assert keyword.column_names == ["prompt", "keyword"] and len(keyword) == 5
    assert all(k in p for p, k in zip(keyword["prompt"], keyword["keyword"], strict=True))


def test_generated_task_needs_n_is_seeded_and_takes_task_options():
    with pytest.raises(ValueError, match="pass n="):
        prompt_records("rlenv/Arithmetic-v0")
    a = prompt_records("rlenv/Arithmetic-v0", n=20, seed=3, difficulty="hard")
    assert a == prompt_records("rlenv/Arithmetic-v0", n=20, seed=3, difficulty="hard")
    assert a != prompt_records("rlenv/Arithmetic-v0", n=20, seed=4, difficulty="hard")
    easy = prompt_records("rlenv/Arithmetic-v0", n=20, seed=3)
    assert max(len(r["prompt"]) for r in a) > max(len(r["prompt"]) for r in easy)
    for r in a:  # the answer column is what the prompt asks for
        assert int(r["answer"]) == eval(r["prompt"].rstrip("="))  # noqa: S307 - digits and one operator


def test_bad_input_names_the_fix():
    with pytest.raises(TypeError, match="registered env id"):
        prompt_records(["a"], difficulty="hard")
    with pytest.raises(ValueError, match="n must be"):
        prompt_records(["a"], n=0)
    with pytest.raises(Exception, match="PositiveReveiw|PositiveReview"):
        prompt_records("rlenv/PositiveReveiw-v0")


def test_task_reward_scores_with_the_columns_of_the_dataset():
    records = prompt_records("rlenv/Arithmetic-v0", n=4, seed=0)
    reward = task_reward("rlenv/Arithmetic-v0")
    right = [str(r["answer"]) for r in records]
    assert reward([r["prompt"] for r in records], right, answer=[r["answer"] for r in records]) == [1.0] * 4
    assert reward.__name__ == "numeric"
