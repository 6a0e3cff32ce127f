import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

from reward_models import RewardModelError
from rlenv import TextGenEnv
from tests.rlenv.conftest import PROMPTS, build_word_tokenizer, count_good


def make_env(tok, **kw):
    kw.setdefault("max_prompt_tokens", 6)
    kw.setdefault("max_new_tokens", 5)
    return TextGenEnv(tok, kw.pop("prompts", PROMPTS), kw.pop("reward_model", count_good), **kw)


def ids(tok, *words):
    return [tok.convert_tokens_to_ids(w) for w in words]


def test_passes_check_env_without_warnings(word_tokenizer):
    env = make_env(word_tokenizer)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    assert [str(w.message) for w in caught] == []


def test_spaces(word_tokenizer):
    env = make_env(word_tokenizer)
    V = len(word_tokenizer)
    assert env.action_space == gym.spaces.Discrete(V)
    assert env.observation_space["input_ids"].shape == (11,)
    assert env.observation_space["input_ids"].dtype == np.int64
    assert env.observation_space["attention_mask"].dtype == np.int8
    assert env.observation_space["input_ids"].high.max() == V - 1


def test_eos_terminates_and_reward_only_at_end(word_tokenizer):
    env = make_env(word_tokenizer)
    obs, info = env.reset(seed=0, options={"prompt": "the movie was"})
    assert info == {"prompt": "the movie was"}
    assert obs["attention_mask"][:6].tolist() == [0, 0, 0, 1, 1, 1]
    rewards = []
    for a in ids(word_tokenizer, "good", "and", "great"):
        obs, r, term, trunc, info = env.step(a)
        rewards.append(r)
        assert not term and not trunc and info == {}
    obs, r, term, trunc, info = env.step(word_tokenizer.eos_token_id)
    assert (term, trunc) == (True, False)
    assert rewards == [0.0, 0.0, 0.0] and r == 2.0
    assert info["prompt"] == "the movie was" and info["completion"] == "good and great"
    # the EOS token is in the observation, the completion text excludes it
    assert obs["input_ids"][6:10].tolist() == ids(word_tokenizer, "good", "and", "great") + [word_tokenizer.eos_token_id]


def test_budget_truncates(word_tokenizer):
    env = make_env(word_tokenizer, max_new_tokens=3)
    env.reset(seed=0)
    outs = [env.step(ids(word_tokenizer, "good")[0]) for _ in range(3)]
    assert [(o[2], o[3]) for o in outs] == [(False, False), (False, False), (False, True)]
    assert outs[-1][1] == 3.0


def test_stop_string_terminates_and_is_cut(word_tokenizer):
    env = make_env(word_tokenizer, stop_strings=["!"])
    env.reset(seed=0)
    env.step(ids(word_tokenizer, "good")[0])
    _, r, term, trunc, info = env.step(ids(word_tokenizer, "!")[0])
    assert term and not trunc
    assert info["completion"].strip() == "good" and r == 1.0


def test_step_after_end_raises(word_tokenizer):
    env = make_env(word_tokenizer)
    with pytest.raises(RuntimeError, match="call env.reset"):
        env.step(0)
    env.reset(seed=0)
    env.step(word_tokenizer.eos_token_id)
    with pytest.raises(RuntimeError, match="call env.reset"):
        env.step(0)


@pytest.mark.parametrize("action, error, match", [
    (10_000, ValueError, "outside the vocabulary"),
    (-1, ValueError, "outside the vocabulary"),
    (1.5, TypeError, "integer token ids"),
    (np.float32(3), TypeError, "integer token ids"),
])
def test_bad_actions(word_tokenizer, action, error, match):
    env = make_env(word_tokenizer)
    env.reset(seed=0)
    with pytest.raises(error, match=match):
        env.step(action)
    env.step(np.int64(ids(word_tokenizer, "good")[0]))  # the episode is intact after the error


def test_long_prompt_truncates_with_warning_or_errors(word_tokenizer):
    long_prompt = "the movie was very very very good and the food was great"
    env = make_env(word_tokenizer)
    with pytest.warns(UserWarning, match="exceeds max_prompt_tokens=6"):
        obs, _ = env.reset(seed=0, options={"prompt": long_prompt})
    assert obs["attention_mask"][:6].tolist() == [1] * 6
    assert word_tokenizer.decode(obs["input_ids"][:6]) == "good and the food was great"
    strict = make_env(word_tokenizer, prompt_overflow="error")
    with pytest.raises(ValueError, match="raise max_prompt_tokens or pass prompt_overflow='truncate'"):
        strict.reset(seed=0, options={"prompt": long_prompt})


def test_empty_prompt_starts_from_eos(word_tokenizer):
    env = make_env(word_tokenizer)
    obs, _ = env.reset(seed=0, options={"prompt": ""})
    assert obs["attention_mask"].sum() == 1 and obs["input_ids"][5] == word_tokenizer.eos_token_id


def test_tokenizer_without_eos_or_pad():
    with pytest.raises(ValueError, match="no EOS token.*add_special_tokens"):
        TextGenEnv(build_word_tokenizer(eos=False), PROMPTS, count_good)
    with pytest.raises(ValueError, match="no pad token.*tokenizer.pad_token"):
        TextGenEnv(build_word_tokenizer(pad=False), PROMPTS, count_good)


def test_missing_tokenizer_path():
    with pytest.raises(FileNotFoundError, match="never downloads"):
        TextGenEnv("/no/such/model", PROMPTS, count_good)


@pytest.mark.parametrize("bad_rm, match", [
    (lambda prompts, completions, **k: [1.0] * (len(completions) + 1), "returned 2 values for 1 completions"),
    (lambda prompts, completions, **k: [float("nan")] * len(completions), "nan at index 0"),
    (lambda prompts, completions, **k: [float("inf")] * len(completions), "inf at index 0"),
    (lambda prompts, completions, **k: ["high"] * len(completions), "non-number at index 0"),
])
def test_bad_reward_model_is_named(word_tokenizer, bad_rm, match):
    bad_rm.name = "my_rm"
    env = make_env(word_tokenizer, reward_model=bad_rm)
    env.reset(seed=0)
    with pytest.raises(RewardModelError, match=f"'my_rm'.*{match}"):
        env.step(word_tokenizer.eos_token_id)


def test_extra_columns_reach_the_reward_model(word_tokenizer):
    seen = {}

    def rm(prompts, completions, answer=None, **kwargs):
        seen["answer"] = answer
        return [1.0 if c.strip() == str(a) else 0.0 for c, a in zip(completions, answer, strict=True)]

    env = make_env(word_tokenizer, prompts=[{"prompt": "2 + 2 =", "answer": 4}], reward_model=rm)
    env.reset(seed=0)
    env.step(ids(word_tokenizer, "4")[0])
    _, r, *_ = env.step(word_tokenizer.eos_token_id)
    assert seen["answer"] == [4] and r == 1.0


def test_same_seed_same_episodes(word_tokenizer):
    def run(seed):
        env = make_env(word_tokenizer)
        env.action_space.seed(seed)
        trace = []
        obs, info = env.reset(seed=seed)
        for _ in range(30):
            obs, r, term, trunc, info = env.step(env.action_space.sample())
            trace.append((obs["input_ids"].tolist(), r, term, trunc))
            if term or trunc:
                obs, info = env.reset()
                trace.append(info["prompt"])
        return trace

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_render_modes(word_tokenizer, capsys):
    env = make_env(word_tokenizer, render_mode="ansi")
    env.reset(seed=0, options={"prompt": "the movie was"})
    env.step(ids(word_tokenizer, "good")[0])
    assert env.render() == "the movie was good"
    human = make_env(word_tokenizer, render_mode="human")
    human.reset(seed=0, options={"prompt": "the food was"})
    human.step(ids(word_tokenizer, "bad")[0])
    assert capsys.readouterr().out.splitlines()[-1] == "the food was bad"
    with pytest.raises(ValueError, match="render_mode"):
        make_env(word_tokenizer, render_mode="rgb_array_list")


def test_gymnasium_wrappers(word_tokenizer):
    env = make_env(word_tokenizer, max_new_tokens=20)
    env = gym.wrappers.TimeLimit(env, max_episode_steps=4)
    env = gym.wrappers.RecordEpisodeStatistics(env)
    env = gym.wrappers.FlattenObservation(env)
    with pytest.warns(UserWarning, match="TimeLimit of max_episode_steps=4"):  # cut episodes go unscored
        obs, _ = env.reset(seed=1)
    assert obs.shape == (2 * 26,)
    for _ in range(4):
        obs, r, term, trunc, info = env.step(ids(word_tokenizer, "good")[0])
    assert trunc and "episode" in info and info["episode"]["l"] == 4


@settings(max_examples=40, deadline=None)
@given(actions=st.lists(st.integers(min_value=0, max_value=len(build_word_tokenizer()) - 1), min_size=1, max_size=12),
       seed=st.integers(0, 2**16))
def test_fuzz_invariants(actions, seed):
    tok = build_word_tokenizer()
    env = make_env(tok, max_new_tokens=6)
    obs, _ = env.reset(seed=seed)
    steps = 0
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        steps += 1
        assert env.observation_space.contains(obs)
        assert obs["attention_mask"][6:].sum() == steps  # one generated token per step, no more
        # exactly one terminal step: EOS terminates, else the budget truncates, else neither
        assert term == (a == tok.eos_token_id)
        assert trunc == (not term and steps == 6)
        if term or trunc:
            assert r == count_good([], [info["completion"]])[0]
            obs, _ = env.reset()
            steps = 0
        else:
            assert r == 0.0 and info == {}


@pytest.mark.parametrize("limit", [5, 24])
def test_a_time_limit_below_max_new_tokens_warns_that_episodes_go_unscored(limit):
    import warnings

    import gymnasium as gym

    import rlenv  # noqa: F401 - registers the ids

    env = gym.make("rlenv/PositiveReview-v0", max_episode_steps=limit)  # max_new_tokens=24
    word = env.unwrapped.tokenizer.encode(" good")[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for seed in range(3):
            env.reset(seed=seed)
            while True:
                *_, terminated, truncated, info = env.step(word)
                if terminated or truncated:
                    break
    messages = [str(w.message) for w in caught if "TimeLimit" in str(w.message)]
    if limit < 24:
        assert info == {}  # cut by TimeLimit: never scored
        assert len(messages) == 1 and "max_episode_steps=5" in messages[0]
        assert "pass max_new_tokens=5 instead" in messages[0]
    else:
        assert "completion" in info and messages == []


def test_a_hand_wrapped_time_limit_warns_too(word_tokenizer):
    from gymnasium.wrappers import TimeLimit

    env = TimeLimit(make_env(word_tokenizer), max_episode_steps=2)
    with pytest.warns(UserWarning, match="max_episode_steps=2 wraps an env with max_new_tokens"):
        env.reset(seed=0)
