"""Train / held-out prompt splits of the named tasks, and the two newer tasks (Brief, ContinueReview)."""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest

import rlenv
from rlenv.tasks import TASK_CEILINGS, untrained_heldout
from rlenv.tasks.builtin import (
    SPLIT_SIZES,
    arithmetic,
    brief,
    continue_review,
    keyword,
    learned_review,
    positive_review,
)
from rlenv.tasks.splits import is_heldout_text, split_prompt_file

FILE_TASKS = {"rlenv/PositiveReview-v0": positive_review, "rlenv/Brief-v0": brief, "rlenv/Keyword-v0": keyword,
              "rlenv/ContinueReview-v0": continue_review, "rlenv/LearnedReview-v0": learned_review}


@pytest.mark.parametrize("env_id", sorted(FILE_TASKS))
def test_file_splits_are_disjoint_cover_the_file_and_match_the_documented_sizes(env_id) -> None:
    build = FILE_TASKS[env_id]
    train = [p.text for p in build(split="train")["prompts"].prompts]
    held = [p.text for p in build(split="heldout")["prompts"].prompts]
    assert not set(train) & set(held)
    assert len(train) + len(held) == 300
    assert SPLIT_SIZES[env_id].startswith(f"{len(train)} train / {len(held)} held-out")


def test_the_default_split_is_train() -> None:
    assert [p.text for p in positive_review()["prompts"].prompts] == \
        [p.text for p in positive_review(split="train")["prompts"].prompts]


def test_arithmetic_splits_never_share_a_prompt() -> None:
    rng = np.random.default_rng(0)
    draws = {split: {arithmetic(split=split)["prompts"](rng)["prompt"] for _ in range(400)}
             for split in ("train", "heldout")}
    assert not draws["train"] & draws["heldout"]
    assert all(is_heldout_text(p) for p in draws["heldout"]) and not any(is_heldout_text(p) for p in draws["train"])
    easy = {f"{a}+{b}=" for a in range(10) for b in range(10)}
    assert draws["heldout"] == {p for p in easy if is_heldout_text(p)}  # all 27 held-out sums appear
    assert len(draws["heldout"]) == 27 and SPLIT_SIZES["rlenv/Arithmetic-v0"].startswith("easy: 73 train / 27")


def test_an_unknown_split_names_the_choices(tmp_path) -> None:
    with pytest.raises(ValueError, match="split must be 'train' or 'heldout'"):
        positive_review(split="test")
    with pytest.raises(ValueError, match="split must be 'train' or 'heldout'"):
        gym.make("rlenv/Arithmetic-v0", split="valid")


@pytest.mark.parametrize("env_id", ["rlenv/Brief-v0", "rlenv/ContinueReview-v0", "rlenv/LearnedReview-v0"])
def test_new_tasks_run_with_no_arguments(env_id) -> None:
    env = gym.make(env_id)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    done = False
    while not done:
        _, reward, terminated, truncated, step_info = env.step(env.unwrapped.tokenizer.eos_token_id)
        done = terminated or truncated
    assert -1.5 <= reward <= 1.5 and step_info["completion"] == ""


def test_brief_rewards_the_target_length_and_continue_review_the_reference() -> None:
    rm = brief(target_words=4)["reward_model"]
    assert rm(prompts=["x"] * 3, completions=["one two three four", "one two", "a b c d e f g h i j"]) == \
        [1.0, 0.5, 0.0]
    record = continue_review(split="heldout")["prompts"].prompts[0]
    chrf = continue_review()["reward_model"]
    exact, other = chrf(prompts=["p", "p"], completions=[record.columns["references"][0], "zzz"],
                        references=[record.columns["references"]] * 2)
    assert exact == pytest.approx(1.0) and other < 0.1


def test_reference_file_is_reproducible() -> None:
    from tools.extracts import REFERENCES_PATH, reference_records

    lines = REFERENCES_PATH.read_text(encoding="utf-8").splitlines()
    import json

    assert [json.loads(line) for line in lines] == reference_records()


def test_untrained_scores_are_stored_with_their_command_for_every_split_task() -> None:
    stored = untrained_heldout()
    assert stored["command"] == "python benchmarks/untrained_heldout.py"
    assert set(stored["scores"]) == set(TASK_CEILINGS)
    for env_id, entry in stored["scores"].items():
        assert entry["sampled"]["reward_mean"] < TASK_CEILINGS[env_id]  # headroom
    ids = {info.id for info in rlenv.envs()}
    assert set(TASK_CEILINGS) <= ids


def test_split_file_reader_names_the_split_in_its_description(tmp_path) -> None:
    path = tmp_path / "p.txt"
    path.write_text("\n".join(f"prompt {i}" for i in range(10)) + "\n")
    held = split_prompt_file(path, "heldout")
    assert [p.text for p in held.prompts] == ["prompt 4", "prompt 9"]
    assert re.search(r"heldout split \(2 of 10\)", held.description)


def test_the_learned_reward_model_is_small_and_tracks_its_vader_labels() -> None:
    from rlenv.assets import REVIEW_RM_DIR
    from tools.reward_model import review_scores

    assert (REVIEW_RM_DIR / "model.safetensors").stat().st_size < 1_000_000
    rm = learned_review()["reward_model"]
    records = review_scores(n=200, seed=7)  # reviews it never saw
    predicted = rm(prompts=[""] * len(records), completions=[r["text"] for r in records])
    assert np.corrcoef(predicted, [r["score"] for r in records])[0, 1] > 0.8
