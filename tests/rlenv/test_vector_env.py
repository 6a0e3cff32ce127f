import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from rlenv import TextGenEnv, TextGenVectorEnv
from tests.rlenv.conftest import PROMPTS, count_good

N = 4


def kwargs(tok, **kw):
    base = dict(tokenizer=tok, prompts=PROMPTS, reward_model=count_good, max_prompt_tokens=6, max_new_tokens=5)
    base.update(kw)
    return base


def random_actions(rng, tok, n):
    # bias towards EOS and 'good' so episodes end at varied lengths and rewards vary
    choices = np.array([tok.eos_token_id, tok.convert_tokens_to_ids("good")] + list(range(3, 20)))
    return rng.choice(choices, size=n, p=[0.2, 0.2] + [0.6 / 17] * 17).astype(np.int64)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_agrees_with_sync_vector_env_step_for_step(word_tokenizer, mode):
    native = TextGenVectorEnv(N, autoreset_mode=mode, **kwargs(word_tokenizer))
    sync = SyncVectorEnv([lambda: TextGenEnv(**kwargs(word_tokenizer))] * N, autoreset_mode=mode)
    o1, i1 = native.reset(seed=11)
    o2, i2 = sync.reset(seed=11)
    assert list(i1["prompt"]) == list(i2["prompt"])
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(40):
        a = random_actions(rng, word_tokenizer, N)
        o1, r1, t1, u1, i1 = native.step(a)
        o2, r2, t2, u2, i2 = sync.step(a)
        for key in ("input_ids", "attention_mask"):
            np.testing.assert_array_equal(o1[key], o2[key])
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(t1, t2)
        np.testing.assert_array_equal(u1, u2)
        for key in ("prompt", "completion"):
            assert (key in i1) == (key in i2)
            if key in i1:
                np.testing.assert_array_equal(i1["_" + key], i2["_" + key])
                assert list(i1[key][i1["_" + key]]) == list(i2[key][i2["_" + key]])
        if mode == AutoresetMode.SAME_STEP and "final_obs" in i2:
            np.testing.assert_array_equal(i1["_final_obs"], i2["_final_obs"])
            for k in np.flatnonzero(i2["_final_obs"]):
                np.testing.assert_array_equal(i1["final_obs"][k]["input_ids"], i2["final_obs"][k]["input_ids"])
        ended += int((t1 | u1).sum())
    assert ended > 10  # the comparison covered many episode ends and resets


def test_make_vec_uses_the_native_env(word_tokenizer_path):
    envs = gym.make_vec("rlenv/TextGen-v0", num_envs=3, vectorization_mode="vector_entry_point",
                        **kwargs(word_tokenizer_path))
    assert isinstance(envs.unwrapped, TextGenVectorEnv) and envs.num_envs == 3
    obs, info = envs.reset(seed=0)
    assert obs["input_ids"].shape == (3, 11) and envs.observation_space.contains(obs)


def test_one_reward_call_per_step(word_tokenizer):
    calls = []

    def rm(prompts, completions, **kw):
        calls.append(len(completions))
        return [0.0] * len(completions)

    envs = TextGenVectorEnv(N, autoreset_mode="Disabled", **kwargs(word_tokenizer, reward_model=rm))
    envs.reset(seed=0)
    eos = word_tokenizer.eos_token_id
    envs.step(np.array([eos, eos, 5, 5]))
    envs.step(np.array([5, 5, eos, 5]))
    assert calls == [2, 1]


def test_disabled_mode_freezes_finished_episodes(word_tokenizer):
    envs = TextGenVectorEnv(N, autoreset_mode="Disabled", **kwargs(word_tokenizer))
    obs, _ = envs.reset(seed=0)
    eos, good = word_tokenizer.eos_token_id, word_tokenizer.convert_tokens_to_ids("good")
    obs, r, t, u, info = envs.step(np.array([eos, good, good, good]))
    assert t.tolist() == [True, False, False, False] and envs.done.tolist() == [True, False, False, False]
    frozen = obs["input_ids"][0].copy()
    ends = [0] * N
    for _ in range(5):
        if envs.done.all():
            break
        obs, r, t, u, info = envs.step(np.array([good] * N))
        np.testing.assert_array_equal(obs["input_ids"][0], frozen)  # actions of a finished env are ignored
        assert r[0] == 0.0 and not t[0] and not u[0]
        for i in range(N):
            ends[i] += int(t[i] or u[i])
    assert ends == [0, 1, 1, 1]  # each episode reports its end exactly once
    with pytest.raises(RuntimeError, match="every sub-env's episode has ended"):
        envs.step(np.array([good] * N))
    obs, info = envs.reset(options={"reset_mask": np.array([True, False, False, False])})
    assert envs.done.tolist() == [False, True, True, True]
    assert info["_prompt"].tolist() == [True, False, False, False]


def test_group_size_repeats_prompts(word_tokenizer):
    envs = TextGenVectorEnv(8, **kwargs(word_tokenizer))
    _, info = envs.reset(seed=3, options={"group_size": 4})
    prompts = list(info["prompt"])
    assert prompts[:4] == [prompts[0]] * 4 and prompts[4:] == [prompts[4]] * 4
    with pytest.raises(ValueError, match="group_size=3 must divide num_envs=8"):
        envs.reset(options={"group_size": 3})


def test_forced_prompts_and_seed_lists(word_tokenizer):
    envs = TextGenVectorEnv(2, **kwargs(word_tokenizer))
    _, info = envs.reset(options={"prompts": ["the food was", {"prompt": "the movie was", "answer": 1}]})
    assert list(info["prompt"]) == ["the food was", "the movie was"]
    _, a = envs.reset(seed=[5, 9])
    _, b = TextGenVectorEnv(2, **kwargs(word_tokenizer)).reset(seed=[5, 9])
    assert list(a["prompt"]) == list(b["prompt"])
    with pytest.raises(ValueError, match="2 envs"):
        envs.reset(options={"prompts": ["a", "b", "c"]})


def test_bad_actions_and_options(word_tokenizer):
    envs = TextGenVectorEnv(N, **kwargs(word_tokenizer))
    envs.reset(seed=0)
    with pytest.raises(ValueError, match="expected 4 actions"):
        envs.step(np.array([1, 2]))
    with pytest.raises(TypeError, match="integer token ids"):
        envs.step(np.zeros(N))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        envs.step(np.full(N, 999))
    with pytest.raises(ValueError, match="unknown reset options"):
        envs.reset(options={"prompt": "x"})
    with pytest.raises(ValueError, match="autoreset_mode"):
        TextGenVectorEnv(2, autoreset_mode="Sometimes", **kwargs(word_tokenizer))


def test_render_ansi(word_tokenizer):
    envs = TextGenVectorEnv(2, render_mode="ansi", **kwargs(word_tokenizer))
    envs.reset(options={"prompts": "the movie was"})
    envs.step(np.array([word_tokenizer.convert_tokens_to_ids("good")] * 2))
    assert envs.render() == ("the movie was good", "the movie was good")


def _episode_prompts(env, steps, tok, seed):
    """Per sub-env, the prompts of its episodes in order, driven by random actions through autoresets."""
    obs, info = env.reset(seed=seed, options={"group_size": 2})
    prompts = [[p] for p in info["prompt"]]
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        obs, _, term, trunc, info = env.step(random_actions(rng, tok, env.num_envs))
        if env.autoreset_mode == AutoresetMode.SAME_STEP:
            for i in np.flatnonzero(term | trunc):
                prompts[i].append(info["prompt"][i])
        elif "_prompt" in info:  # NextStep: the reset happens on the following step
            for i in np.flatnonzero(info["_prompt"]):
                prompts[i].append(info["prompt"][i])
    return prompts


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_groups_survive_autoreset(word_tokenizer, mode):
    """The k-th episode of each member of a group shares the group's k-th prompt, although the
    members' episodes end at different steps (so they reset at different times)."""
    env = TextGenVectorEnv(4, autoreset_mode=mode, **kwargs(word_tokenizer, prompts=[f"p{i} a" for i in range(50)]))
    prompts = _episode_prompts(env, 60, word_tokenizer, seed=3)
    for leader in (0, 2):
        a, b = prompts[leader], prompts[leader + 1]
        k = min(len(a), len(b))
        assert k >= 4, "episodes should have ended several times"
        assert a[:k] == b[:k]
    assert prompts[0][:3] != prompts[2][:3]  # different groups draw different prompts
    # without groups every sub-env draws its own prompts, as before
    env.reset(seed=3)
    assert env._group_size == 1


def test_reset_mask_must_cover_whole_groups(word_tokenizer):
    env = TextGenVectorEnv(4, autoreset_mode="Disabled", **kwargs(word_tokenizer))
    env.reset(seed=0, options={"group_size": 2})
    with pytest.raises(ValueError, match="part of a group"):
        env.reset(options={"reset_mask": np.array([True, False, False, False])})
    _, info = env.reset(options={"reset_mask": np.array([False, False, True, True])})  # a whole group: fine
    assert info["prompt"][2] == info["prompt"][3]
    with pytest.raises(ValueError, match="reset all of them to regroup"):
        env.reset(options={"reset_mask": np.array([False, False, True, True]), "group_size": 1})
