"""Training on an env factory from Python (a reward function object, no string), and ``rlenv sample``'s
transcripts: role segments from the rollout's masks, multi-turn output, and the interactive modes."""

from __future__ import annotations

import json
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
import torch

import reward_models
from agents.cli import main
from agents.training.config import ConfigError, TrainConfig
from agents.training.rollout import RolloutBatch
from agents.training.run_log import read_metrics
from agents.training.sampling import ENV, POLICY, PROMPT, transcripts, typed_responder
from agents.training.trainer import train
from tests.agents.conftest import PROMPTS, build_tokenizer

pytestmark = pytest.mark.usefixtures("single_thread")


def shortness(completions, **kwargs):
    """A reward only a Python object can carry here: minus the number of characters."""
    return [-float(len(c)) for c in completions]


def make_env(tokenizer: str):
    def factory():
        return gym.make(
            "rlenv/TextGen-v0",
            tokenizer=tokenizer,
            prompts=PROMPTS,
            reward_model=shortness,
            max_prompt_tokens=8,
            max_new_tokens=4,
        )

    return factory


def factory_config(tiny_model: str, out, **changes) -> TrainConfig:
    fields = dict(
        algo="reinforce",
        env=make_env(tiny_model),
        model=tiny_model,
        steps=2,
        batch_size=4,
        lr=1e-3,
        out=str(out),
        device="cpu",
        checkpoint_every=1,
    )
    return TrainConfig(**{**fields, **changes})


def test_train_runs_an_env_factory_with_its_reward_function(tiny_model, tmp_path) -> None:
    result = train(factory_config(tiny_model, tmp_path / "run"))
    records = read_metrics(result.out)
    assert [r["step"] for r in records] == [1, 2]
    for record in records:  # the factory's reward, not the generic env's default (VADER, in [-1, 1])
        assert record["reward_mean"] <= -1.0
    saved = json.loads((result.checkpoint / "train_config.json").read_text())
    assert saved["env"].startswith("factory:") and saved["env"].endswith("make_env.<locals>.factory")


def test_a_factory_run_resumes_from_python_and_says_how_from_the_cli(tiny_model, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    train(factory_config(tiny_model, out, steps=1))
    resumed = train(factory_config(tiny_model, out, steps=2, resume=str(out)))
    assert [r["step"] for r in read_metrics(resumed.out)] == [1, 2]
    assert main(["train", "--resume", str(out), "--steps", "3"]) == 2
    assert "trained on an env factory from Python" in capsys.readouterr().err


def test_a_factory_must_return_a_single_turn_rlenv_env(tiny_model, tmp_path) -> None:
    with pytest.raises(ConfigError, match="must return an rlenv TextGenEnv"):
        train(replace(factory_config(tiny_model, tmp_path / "a"), env=lambda: gym.make("CartPole-v1")))
    with pytest.raises(ConfigError, match="tokenizer of .* ids .* pass tokenizer="):
        train(replace(factory_config(tiny_model, tmp_path / "b"), env=lambda: gym.make("rlenv/TextGen-v0")))


def test_a_factory_takes_no_env_args_reward_funcs_or_heldout_evaluation(tiny_model, tmp_path) -> None:
    with pytest.raises(ConfigError, match="configure an env id"):
        factory_config(tiny_model, tmp_path, env_args={"max_new_tokens": 3})
    with pytest.raises(ConfigError, match="an env factory has none"):
        factory_config(tiny_model, tmp_path, eval_every=1)


def test_env_args_refuse_a_python_object_and_name_the_ways_that_work() -> None:
    with pytest.raises(ConfigError, match="reward_funcs=.*env factory"):
        TrainConfig(steps=1, env_args={"reward_model": shortness})


def test_a_registered_reward_function_trains_by_name(tiny_model, tmp_path) -> None:
    reward_models.register("shortness_test", shortness, overwrite=True)
    config = TrainConfig(
        algo="reinforce",
        env="rlenv/TextGen-v0",
        model=tiny_model,
        steps=1,
        batch_size=4,
        device="cpu",
        out=str(tmp_path / "run"),
        env_args={
            "prompts": PROMPTS,
            "reward_model": "shortness_test",
            "max_prompt_tokens": 8,
            "max_new_tokens": 4,
        },
    )
    assert read_metrics(train(config).out)[0]["reward_mean"] <= -1.0


# ---- transcripts -----------------------------------------------------------------------------------
def synthetic_batch(tokenizer) -> RolloutBatch:
    """Two episodes, prompt width 3, 6 generated columns. Row 0: policy 2 tokens, env 2, policy 1, then
    padding. Row 1: policy 6 (single-turn, cut at the budget)."""
    ids = lambda words: tokenizer.convert_tokens_to_ids(words.split())  # noqa: E731
    pad = tokenizer.pad_token_id
    row0 = [pad, *ids("the movie"), *ids("was great"), *ids("very bad"), *ids("fine"), pad]
    row1 = [*ids("i liked the"), *ids("hotel room was clean and good")]
    input_ids = torch.tensor([row0, row1])
    attention = torch.tensor([[0, 1, 1, 1, 1, 1, 1, 1, 0], [1] * 9])
    response = torch.tensor([[1, 1, 0, 0, 1, 0], [1] * 6], dtype=torch.float)
    zeros = torch.zeros(2, 6)
    return RolloutBatch(
        input_ids=input_ids,
        attention_mask=attention,
        response_mask=response,
        actions=zeros.long(),
        logprobs=zeros,
        values=None,
        rewards=torch.tensor([0.5, -1.0]),
        terminated=torch.tensor([True, False]),
        truncated=torch.tensor([False, True]),
        prompts=["the movie", "i liked the"],
        completions=["", ""],
        prompt_length=3,
    )


def test_transcripts_split_policy_and_env_tokens_by_the_response_mask() -> None:
    tokenizer = build_tokenizer()
    first, second = transcripts(synthetic_batch(tokenizer), tokenizer)
    assert first.turns == [(PROMPT, "the movie"), (POLICY, "was great"), (ENV, "very bad"), (POLICY, "fine")]
    assert (first.reward, first.ended) == (0.5, "eos")
    assert second.turns == [(PROMPT, "i liked the"), (POLICY, "hotel room was clean and good")]
    assert (second.reward, second.ended) == (-1.0, "budget")
    assert first.render(roles=True).splitlines() == [
        "[prompt] the movie",
        "[policy] was great",
        "[env] very bad",
        "[policy] fine",
    ]
    assert second.render(roles=False) == "i liked the | hotel room was clean and good"


def test_the_typed_responder_replies_with_your_line_and_ends_on_an_empty_one() -> None:
    shown: list[str] = []
    lines = iter(["higher", ""])
    you = typed_responder(lambda prompt: next(lines), shown.append)
    history = type("History", (), {"last_text": "7\n"})()
    assert you(history) == ("higher\n", 0.0, False)
    assert you(history) == ("", 0.0, True)
    assert shown == ["[policy] 7\n", "[policy] 7\n"]

    def closed(prompt):
        raise EOFError

    assert typed_responder(closed, shown.append)(history) == ("", 0.0, True)


# ---- rlenv sample, in process (the embedded model) ----------------------------------------------------
def test_sample_prints_role_marked_transcripts_for_a_multi_turn_id(capsys) -> None:
    assert (
        main(
            [
                "sample",
                "--env",
                "rlenv/GuessNumber-v0",
                "--n",
                "2",
                "--max-new-tokens",
                "16",
                "--device",
                "cpu",
                "--json",
            ]
        )
        == 0
    )
    episodes = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert len(episodes) == 2
    for episode in episodes:
        roles = [role for role, _ in episode["turns"]]
        assert roles[0] == PROMPT and roles[1] == POLICY and set(roles) <= {PROMPT, POLICY, ENV}
        assert all(a != b for a, b in zip(roles, roles[1:], strict=False))  # runs of one side are merged


def sample_typing(monkeypatch, lines: list[str], env: str, *flags: str) -> int:
    """``rlenv sample --interactive`` with ``lines`` as what you type."""
    typed = iter(lines)
    monkeypatch.setattr("builtins.input", lambda prompt="": next(typed))
    return main(["sample", "--env", env, "--interactive", "--device", "cpu", *flags])


def test_sample_interactive_multi_turn_puts_you_in_the_envs_seat(monkeypatch, capsys) -> None:
    assert (
        sample_typing(
            monkeypatch, ["higher", ""], "rlenv/GuessNumber-v0", "--max-new-tokens", "40", "--seed", "3"
        )
        == 0
    )
    assert "[env] higher" in capsys.readouterr().out  # your reply, in the transcript


def test_sample_interactive_single_turn_reads_prompts(monkeypatch, capsys) -> None:
    assert (
        sample_typing(monkeypatch, ["The food was", ""], "rlenv/PositiveReview-v0", "--max-new-tokens", "6")
        == 0
    )
    assert "reward" in capsys.readouterr().out


def test_sample_needs_an_env_for_a_plain_model(capsys) -> None:
    assert main(["sample", "--n", "1"]) == 2
    assert "pass --env ID" in capsys.readouterr().err


def test_sample_greedy_gives_the_same_completion_for_one_prompt(capsys) -> None:
    assert (
        main(
            [
                "sample",
                "--env",
                "rlenv/PositiveReview-v0",
                "--prompt",
                "The hotel was",
                "--n",
                "3",
                "--greedy",
                "--max-new-tokens",
                "6",
                "--device",
                "cpu",
                "--json",
            ]
        )
        == 0
    )
    episodes = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert {e["turns"][0][1] for e in episodes} == {"The hotel was"}
    assert len({json.dumps(e["turns"]) for e in episodes}) == 1
    assert np.isfinite([e["reward"] for e in episodes]).all()
