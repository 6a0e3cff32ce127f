"""Every registered id: Gymnasium's checker, defaults on the embedded model, rewards on hand-made text."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rlenv
from reward_models import RewardModelError


def all_ids():
    return [info.id for info in rlenv.envs()]


def test_expected_ids_are_registered():
    assert {"rlenv/TextGen-v0", "rlenv/PositiveReview-v0", "rlenv/Arithmetic-v0", "rlenv/Keyword-v0",
            "rlenv/ReasoningGym-v0", "rlenv/TokenReverse-v0"} <= set(all_ids())
    for info in rlenv.envs():
        assert info.summary and info.reward and info.prompts


@pytest.mark.parametrize("env_id", all_ids())
def test_check_env_without_warnings(env_id):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gym.make(env_id)  # no arguments: every id runs on its defaults
        check_env(env.unwrapped)
        vec = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")
        obs, _ = vec.reset(seed=0)
        assert vec.observation_space.contains(obs)
    assert [str(w.message) for w in caught] == []


def test_unknown_id_suggests_close_matches():
    with pytest.raises(KeyError, match="did you mean 'rlenv/PositiveReview-v0'") as err:
        rlenv.check_env_id("rlenv/PositveReview-v0")
    assert str(err.value).count("'rlenv/PositiveReview-v0'") == 1  # each suggestion once


@pytest.mark.parametrize(("env_id", "kwargs", "expected"), [
    ("rlenv/TextGen-v0", {"max_new_token": 3}, "'max_new_token' (did you mean 'max_new_tokens'?)"),
    ("rlenv/Arithmetic-v0", {"dificulty": "hard"}, "'dificulty' (did you mean 'difficulty'?); task options: "
                                                   "difficulty, max_operand, operators, partial_width, split; env options: "),
    ("rlenv/Keyword-v0", {"zzz": 1}, "'zzz'; task options: max_words, length_penalty, fuzzy, split; env options"),
])
@pytest.mark.parametrize("vector", [False, True])
def test_an_unknown_env_kwarg_names_the_close_match_and_the_valid_ones(env_id, kwargs, expected, vector):
    with pytest.raises(rlenv.EnvArgumentError, match=f"^{env_id} does not accept ") as err:
        if vector:
            gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point", **kwargs)
        else:
            gym.make(env_id, **kwargs)
    assert expected in str(err.value) and "max_new_tokens" in str(err.value)


def test_reward_model_args_configure_a_reward_model_named_by_the_registry():
    env = gym.make("rlenv/TextGen-v0", reward_model="keyword", reward_model_args={"keywords": "good"})
    reward, _ = play(env, " good", prompt="The film was")
    assert reward == 1.0
    reward, _ = play(env, " bad", prompt="The film was")
    assert reward == 0.0
    with pytest.raises(ValueError, match="reward_model_args configure a reward model named by the registry"):
        gym.make("rlenv/TextGen-v0", reward_model=lambda completions, **kw: [0.0], reward_model_args={"x": 1})
    with pytest.raises(ValueError, match="reward_model_args must be a dict"):
        gym.make("rlenv/TextGen-v0", reward_model="keyword", reward_model_args="good")
    with pytest.raises(RewardModelError, match="does not accept 'keyword'; its options are: keywords"):
        gym.make("rlenv/TextGen-v0", reward_model="keyword", reward_model_args={"keyword": "good"})


def play(env, completion: str, prompt=None):
    """Step the tokens of ``completion`` then EOS; return (reward, info) of the last step."""
    tok = env.unwrapped.tokenizer
    options = None if prompt is None else {"prompt": prompt}
    env.reset(seed=0, options=options)
    for token in tok(completion, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]:
        _, reward, terminated, truncated, info = env.step(token)
        if terminated or truncated:
            return reward, info
    raise AssertionError("episode did not end")


def test_positive_review_reward_is_vader():
    env = gym.make("rlenv/PositiveReview-v0", max_new_tokens=40)
    good, _ = play(env, " wonderful, I loved it and the staff were great.")
    bad, info = play(env, " awful. The worst, rude and dirty.")
    assert good > 0.5 and bad < -0.5
    assert info["completion"] == " awful. The worst, rude and dirty."


def test_arithmetic_indicator_reward():
    env = gym.make("rlenv/Arithmetic-v0")
    right, _ = play(env, "12", prompt={"prompt": "5+7=", "answer": 12})
    wrong, _ = play(env, "13", prompt={"prompt": "5+7=", "answer": 12})
    assert (right, wrong) == (1.0, 0.0)
    obs, info = env.reset(seed=4)
    a, b = info["prompt"].rstrip("=").split("+")
    assert 0 <= int(a) <= 9 and 0 <= int(b) <= 9
    with pytest.raises(ValueError, match="difficulty must be one of"):
        gym.make("rlenv/Arithmetic-v0", difficulty="impossible")


def test_arithmetic_answers_are_right():
    from rlenv.tasks.builtin import arithmetic_prompts

    draw = arithmetic_prompts(99, "+-*")
    rng = np.random.default_rng(0)
    for _ in range(200):
        item = draw(rng)
        assert eval(item["prompt"].rstrip("=")) == item["answer"] and item["answer"] >= 0


def test_keyword_reward():
    env = gym.make("rlenv/Keyword-v0")
    _, info = env.reset(seed=0)
    word = None
    for line in open(rlenv.tasks.builtin.DATA / "keyword_prompts.jsonl"):
        import json

        record = json.loads(line)
        if record["prompt"] == info["prompt"]:
            word = record["keyword"]
    assert word
    hit, _ = play(env, f" the {word} was here.", prompt={"prompt": info["prompt"], "keyword": word})
    miss, _ = play(env, " nothing relevant here.", prompt={"prompt": info["prompt"], "keyword": word})
    assert hit == 1.0 and 0.0 <= miss < 0.8  # fuzzy by default: a miss earns only its best near-match


def test_reasoning_gym_scores_with_its_own_scorer():
    env = gym.make("rlenv/ReasoningGym-v0", task="basic_arithmetic")
    env.reset(seed=3)
    entry = None

    # the env's prompt source gives the same entry for the same seed
    from rlenv.tasks.builtin import reasoning_gym_prompts

    draw = reasoning_gym_prompts("basic_arithmetic", {})
    entry = draw(np.random.default_rng(0))
    right, _ = play(env, str(entry["entry"]["answer"]), prompt=entry)
    wrong, _ = play(env, "no idea", prompt=entry)
    assert right == 1.0 and wrong == 0.0
    _, a = env.reset(seed=3)
    _, b = gym.make("rlenv/ReasoningGym-v0", task="basic_arithmetic").reset(seed=3)
    assert a["prompt"] == b["prompt"]
    with pytest.raises(Exception, match="did you mean 'basic_arithmetic'"):
        gym.make("rlenv/ReasoningGym-v0", task="basic_arithmetc")


def test_token_reverse_reward():
    env = gym.make("rlenv/TokenReverse-v0")
    assert env.action_space.n == 7
    right, info = play(env, "c b a", prompt="a b c")
    half, _ = play(env, "c a a", prompt="a b c")
    assert right == 1.0 and half == pytest.approx(2 / 3)


@pytest.mark.slow
def test_sb3_ppo_learns_token_reverse():
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.evaluation import evaluate_policy

    torch.set_num_threads(1)
    env = gym.make("rlenv/TokenReverse-v0")
    model = PPO("MultiInputPolicy", env, seed=0, n_steps=512, batch_size=128, ent_coef=0.01, learning_rate=1e-3)
    before, _ = evaluate_policy(model, env, n_eval_episodes=200, deterministic=False, warn=False)
    model.learn(20_000)
    after, _ = evaluate_policy(model, env, n_eval_episodes=200, deterministic=True, warn=False)
    assert before < 0.3 and after > 0.6, (before, after)
