"""Role-marked transcripts: every turn in order with its role, each assistant turn with the reward it
earned (they add up to the episode's return), for chat, multi-turn and single-turn envs; the CLI view."""

from __future__ import annotations

import json

import pytest

import rlenv
from agents.cli import main
from agents.training.rollout import collect_rollouts
from agents.training.transcripts import episode_transcript, format_transcript
from tests.agents.conftest import count_good, make_policy
from tests.agents.test_chat_rollouts import chat_envs, qwen2_policy
from tests.agents.test_multiturn_rollouts import end_turns_often, multi_turn_envs

pytestmark = pytest.mark.usefixtures("single_thread")


def check_rewards_add_up(batch, transcripts):
    for i, transcript in enumerate(transcripts):
        paid = [t["reward"] for t in transcript["turns"] if t["role"] == "assistant"]
        assert sum(paid) == pytest.approx(float(batch.rewards[i]), abs=1e-3)


def test_chat_transcripts_follow_the_conversation():
    policy = qwen2_policy()
    envs = chat_envs(policy, 6)
    batch = collect_rollouts(policy, envs, seed=0)
    transcripts = [episode_transcript(batch, i) for i in range(batch.batch_size)]
    check_rewards_add_up(batch, transcripts)
    roles = {t["role"] for tr in transcripts for t in tr["turns"]}
    assert {"user", "assistant"} <= roles and roles <= {"system", "user", "assistant", "tool"}
    assert all(tr["turns"][0] == {"role": "user", "content": "6 times 7?"} for tr in transcripts)
    with_replies = [tr for tr in transcripts if len(tr["turns"]) > 2]
    assert with_replies and all(tr["turns"][2]["role"] in ("user", "tool") for tr in with_replies)
    text = format_transcript(transcripts[0], 0)
    assert text.startswith("--- episode 0: return") and "[user] 6 times 7?" in text


def test_multi_turn_and_single_turn_transcripts():
    policy = end_turns_often(make_policy("gpt2"))
    batch = collect_rollouts(policy, multi_turn_envs(policy), seed=0)
    transcripts = [episode_transcript(batch, i) for i in range(batch.batch_size)]
    check_rewards_add_up(batch, transcripts)
    for i, transcript in enumerate(transcripts):
        assert transcript["turns"][0] == {"role": "prompt", "content": batch.prompts[i]}
        assert [t["role"] for t in transcript["turns"][1:]] == [
            "assistant" if role == "policy" else "env" for role, _ in batch.conversations[i]
        ]
    single = rlenv.TextGenVectorEnv(
        4,
        tokenizer=policy.tokenizer,
        prompts=["the movie was"],
        reward_model=count_good,
        max_prompt_tokens=6,
        max_new_tokens=6,
        autoreset_mode="Disabled",
    )
    batch = collect_rollouts(policy, single, seed=0)
    transcript = episode_transcript(batch, 0)
    assert [t["role"] for t in transcript["turns"]] == ["prompt", "assistant"]
    assert transcript["turns"][1]["content"] == batch.completions[0]
    check_rewards_add_up(batch, [episode_transcript(batch, i) for i in range(4)])


def test_eval_transcripts_prints_and_writes_them(tmp_path, capsys):
    out = tmp_path / "t.jsonl"
    assert (
        main(
            [
                "eval",
                "--env",
                "rlenv/ChatGuessNumber-v0",
                "--episodes",
                "2",
                "--batch-size",
                "2",
                "--max-new-tokens",
                "12",
                "--transcripts",
                "2",
                "--transcripts-out",
                str(out),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["episodes"] == 2 and "transcripts" not in summary
    assert captured.err.count("--- episode") == 2 and "[user] I picked a number" in captured.err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 2 and records[0]["turns"][0]["role"] == "user"
