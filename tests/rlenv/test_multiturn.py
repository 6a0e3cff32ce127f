"""Multi-turn token-level envs: env replies appended as ids, the policy_mask, budgets, vector form."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from rlenv import TextGenEnv, TextGenVectorEnv
from rlenv.multiturn import TurnHistory, register_responder_env
from tests.rlenv.conftest import PROMPTS


def echo_responder(history: TurnHistory):
    """Replies 'fine .' to a turn without 'great', 'not good' after 'bad'; ends on 'great'.
    Per-turn reward: +1 per 'good' in the turn."""
    words = history.last_text.split()
    if "great" in words:
        return "", 1.0 + words.count("good"), True
    reply = "not good ." if "bad" in words else "fine ."
    return reply, float(words.count("good")), False


def kwargs(tok, **kw):
    base = dict(tokenizer=tok, prompts=PROMPTS, responder=echo_responder, end_of_turn=".",
                max_prompt_tokens=6, max_new_tokens=12)
    base.update(kw)
    return base


def ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def test_check_env_and_spaces(word_tokenizer):
    env = TextGenEnv(**kwargs(word_tokenizer))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    assert [str(w.message) for w in caught] == []
    assert env.observation_space["policy_mask"] == gym.spaces.Box(0, 1, (18,), dtype=np.int8)
    single = TextGenEnv(word_tokenizer, PROMPTS, "vader", max_prompt_tokens=6, max_new_tokens=12)
    assert "policy_mask" not in single.observation_space.spaces  # single-turn layout unchanged


def test_env_reply_is_appended_as_ids_and_masked(word_tokenizer):
    tok = word_tokenizer
    env = TextGenEnv(**kwargs(tok))
    obs, _ = env.reset(options={"prompt": "the movie was"})
    P = 6
    for a in ids(tok, "good bad"):
        obs, r, term, trunc, info = env.step(a)
        assert info == {} and r == 0.0
    obs, r, term, trunc, info = env.step(ids(tok, ".")[0])  # ends the turn
    reply = ids(tok, "not good .")
    assert not term and not trunc and r == 1.0
    assert list(info["env_ids"]) == reply and info["reply"] == "not good ." and info["turn"] == 0
    assert info["turn_text"] == "good bad ."
    # the reply sits right after the turn's last token, in the observation of the same step
    assert obs["input_ids"][P : P + 6].tolist() == ids(tok, "good bad .") + reply
    assert obs["policy_mask"][P : P + 6].tolist() == [1, 1, 1, 0, 0, 0]
    assert obs["attention_mask"][P : P + 7].tolist() == [1] * 6 + [0]
    assert obs["policy_mask"][:P].tolist() == [0] * P
    obs, r, term, trunc, info = env.step(ids(tok, "great")[0])
    assert r == 0.0 and info == {}
    obs, r, term, trunc, info = env.step(ids(tok, ".")[0])
    assert term and not trunc and r == 1.0
    assert info["env_ids"] == () and info["completion"] == "good bad . not good . great ."
    assert info["turns"] == [("policy", "good bad ."), ("env", "not good ."), ("policy", "great .")]
    assert obs["policy_mask"][P : P + 8].tolist() == [1, 1, 1, 0, 0, 0, 1, 1]
    with pytest.raises(RuntimeError, match="call env.reset"):
        env.step(0)


def test_budget_counts_env_tokens_and_truncation_still_pays(word_tokenizer):
    tok = word_tokenizer
    env = TextGenEnv(**kwargs(tok, max_new_tokens=6))
    env.reset(seed=0)
    env.step(ids(tok, "good")[0])
    _, r, term, trunc, info = env.step(ids(tok, ".")[0])  # 2 policy + 2 env tokens ('fine .')
    assert r == 1.0 and len(info["env_ids"]) == 2 and not (term or trunc)
    env.step(ids(tok, "good")[0])
    _, r, term, trunc, info = env.step(ids(tok, "good")[0])  # budget of 6 reached mid-turn
    assert trunc and not term and r == 2.0  # the responder judged the cut turn
    assert info["turn_text"] == "good good" and info["env_ids"] == ()


def test_reply_that_leaves_no_room_truncates(word_tokenizer):
    tok = word_tokenizer
    env = TextGenEnv(**kwargs(tok, max_new_tokens=4))
    env.reset(seed=0)
    env.step(ids(tok, "bad")[0])
    obs, r, term, trunc, info = env.step(ids(tok, ".")[0])  # 'not good .' needs 3 > 4 - 2 - 1
    assert trunc and not term and info["env_ids"] == () and info["reply"] == "not good ."
    assert obs["attention_mask"][6:].tolist() == [1, 1, 0, 0]


def test_stop_strings_and_max_turn_tokens_end_turns(word_tokenizer):
    tok = word_tokenizer
    env = TextGenEnv(**kwargs(tok, end_of_turn=None, stop_strings=["!"]))
    env.reset(seed=0)
    env.step(ids(tok, "good")[0])
    _, r, _, _, info = env.step(ids(tok, "!")[0])
    assert info["turn_text"].strip() == "good" and r == 1.0  # the stop string is cut from the text
    env = TextGenEnv(**kwargs(tok, max_turn_tokens=2))
    env.reset(seed=0)
    _, _, _, _, info = env.step(ids(tok, "good")[0])
    assert info == {}
    _, r, _, _, info = env.step(ids(tok, "good")[0])
    assert info["turn_text"] == "good good" and r == 2.0
    _, _, _, _, info = env.step(tok.eos_token_id)  # EOS always ends a turn
    assert info["turn_text"] == "" and info["turn"] == 1


def test_bad_responders_and_arguments(word_tokenizer):
    tok = word_tokenizer
    for bad, match in [(lambda h: "x", "must return"), (lambda h: ("x", float("nan"), False), "finite"),
                       (lambda h: ("x", 1.0, "no"), "bool"), (lambda h: ([9999], 0.0, False), "outside")]:
        env = TextGenEnv(**kwargs(tok, responder=bad))
        env.reset(seed=0)
        with pytest.raises((TypeError, ValueError), match=match):
            env.step(tok.eos_token_id)
    with pytest.raises(ValueError, match="rewarded by its responder"):
        TextGenEnv(**kwargs(tok, reward_model="vader"))
    with pytest.raises(ValueError, match="not one"):
        TextGenEnv(**kwargs(tok, end_of_turn="good bad"))
    with pytest.raises(ValueError, match="pass responder="):
        TextGenEnv(tok, PROMPTS, end_of_turn=".")


def random_actions(rng, tok, n):
    # bias towards turn ends, EOS and 'great' so turns and episodes end at varied steps
    choices = np.array(ids(tok, ". great good bad") + [tok.eos_token_id] + list(range(3, 20)))
    p = [0.25, 0.05, 0.1, 0.1, 0.05] + [0.45 / 17] * 17
    return rng.choice(choices, size=n, p=p).astype(np.int64)


def compare_infos(i1, i2, keys):
    for key in keys:
        assert (key in i1) == (key in i2), key
        if key in i1:
            np.testing.assert_array_equal(i1["_" + key], i2["_" + key])
            for a, b in zip(i1[key][i1["_" + key]], i2[key][i2["_" + key]], strict=True):
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_vector_env_agrees_with_sync_vector_env(word_tokenizer, mode):
    N = 4
    native = TextGenVectorEnv(N, autoreset_mode=mode, **kwargs(word_tokenizer))
    sync = SyncVectorEnv([lambda: TextGenEnv(**kwargs(word_tokenizer))] * N, autoreset_mode=mode)
    native.reset(seed=5)
    sync.reset(seed=5)
    rng = np.random.default_rng(1)
    ended = turns = 0
    for _ in range(60):
        a = random_actions(rng, word_tokenizer, N)
        o1, r1, t1, u1, i1 = native.step(a)
        o2, r2, t2, u2, i2 = sync.step(a)
        for key in ("input_ids", "attention_mask", "policy_mask"):
            np.testing.assert_array_equal(o1[key], o2[key])
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(t1, t2)
        np.testing.assert_array_equal(u1, u2)
        compare_infos(i1, i2, ("prompt", "env_ids", "reply", "completion"))
        if "final_info" in i2:
            np.testing.assert_array_equal(i1["_final_obs"], i2["_final_obs"])
            compare_infos(i1["final_info"], i2["final_info"], ("completion", "env_ids"))
        ended += int((t1 | u1).sum())
        turns += int(i1.get("_env_ids", np.zeros(N, bool)).sum())
    assert ended > 8 and turns > 15


def test_vector_env_disabled_mode_freezes_finished_rows(word_tokenizer):
    tok = word_tokenizer
    envs = TextGenVectorEnv(3, autoreset_mode="Disabled", **kwargs(tok))
    envs.reset(seed=0)
    great, dot, good = ids(tok, "great . good")
    envs.step(np.array([great, good, good]))
    obs, r, t, u, info = envs.step(np.array([dot, dot, good]))
    assert t.tolist() == [True, False, False] and r.tolist() == [1.0, 1.0, 0.0]
    assert info["_env_ids"].tolist() == [True, True, False] and list(info["env_ids"][1]) == ids(tok, "fine .")
    frozen = {k: v[0].copy() for k, v in obs.items()}
    for _ in range(3):
        obs, r, t, u, info = envs.step(np.array([good, good, dot]))
        for k in frozen:
            np.testing.assert_array_equal(obs[k][0], frozen[k])
        assert r[0] == 0.0 and not t[0] and not u[0]


def test_register_responder_env_makes_single_and_vector(word_tokenizer):
    register_responder_env("test/Echo-v0", echo_responder, PROMPTS, tokenizer=word_tokenizer, end_of_turn=".",
                           max_prompt_tokens=6, max_new_tokens=12)
    env = gym.make("test/Echo-v0")
    obs, _ = env.reset(seed=0)
    assert "policy_mask" in obs
    envs = gym.make_vec("test/Echo-v0", num_envs=2, vectorization_mode="vector_entry_point")
    assert isinstance(envs.unwrapped, TextGenVectorEnv) and envs.reset(seed=0)[0]["policy_mask"].shape == (2, 18)
