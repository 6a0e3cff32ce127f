"""TurnLevel: a whole turn of text per action, same rewards, prompts and seeds as the token-level id."""

import warnings

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import rlenv  # noqa: F401  (registers the ids)
from rlenv.wrappers import TurnLevel


def feed_tokens(env, text_turns, eot):
    """Token-level: each turn's ids then the end-of-turn id; returns the summed reward and last info."""
    tok = env.unwrapped.tokenizer
    total, info = 0.0, {}
    for turn in text_turns:
        for token in [*tok(turn, add_special_tokens=False)["input_ids"], eot]:
            _, r, term, trunc, info = env.step(token)
            total += r
            if term or trunc or "turn" in info:
                break
        if term or trunc:
            break
    return total, info


@pytest.mark.parametrize("env_id,turns", [
    ("rlenv/PositiveReview-v0", ["a wonderful and great film"]),
    ("rlenv/Arithmetic-v0", ["7"]),
    ("rlenv/GuessNumber-v0", ["4", "6", "3"]),  # one token per guess; the third wrong one ends the game
    ("rlenv/Calculator-v0", ["calc(12*3)", "calc(5*5)", "1234"]),
])
def test_same_reward_for_the_same_completion(env_id, turns):
    token_env = gym.make(env_id)
    turn_env = TurnLevel(env_id)
    _, info_a = token_env.reset(seed=7)
    text, info_b = turn_env.reset(seed=7)
    assert info_a["prompt"] == info_b["prompt"] and text.startswith(info_b["prompt"].strip()[:5])
    eot = turn_env.end_of_turn_id
    token_total, token_info = feed_tokens(token_env, turns, eot)
    turn_total, done = 0.0, False
    for turn in turns:
        text, r, term, trunc, info = turn_env.step(turn)
        turn_total += r
        if term or trunc:
            done = True
            break
    assert done and turn_total == pytest.approx(token_total)
    assert info["completion"] == token_info["completion"]


# GuessNumber's game before its defaults changed: 1..20, a guess per line, only the budget ends it
LINE_GAME = dict(high=20, max_turns=None, cue="", max_turn_tokens=None, max_prompt_tokens=24, max_new_tokens=48)


def test_guess_number_turns_and_replies():
    env = TurnLevel("rlenv/GuessNumber-v0", **LINE_GAME)
    text, info = env.reset(seed=3)
    secret = env.unwrapped._episodes.prompts[0].columns["answer"]
    low = 1 if secret > 1 else 2
    text, r, term, trunc, info = env.step(str(low))
    assert r == pytest.approx(-0.1) and not term and info["reply"] == "higher\n"
    assert text.endswith(f"{low}\nhigher\n")
    text, r, term, trunc, info = env.step(f"{secret}\nextra words")
    assert r == 1.0 and term and info["unused_tokens"] > 0
    with pytest.raises(RuntimeError, match="reset"):
        env.step("1")
    no_feedback = TurnLevel("rlenv/GuessNumber-v0", feedback=False, **LINE_GAME)
    no_feedback.reset(seed=3)
    _, r, _, _, info = no_feedback.step(str(low))
    assert info["reply"] == "wrong\n" and r == pytest.approx(-0.1)


def test_check_env_and_bad_actions():
    env = TurnLevel("rlenv/GuessNumberToy-v0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    # the only warning: check_env recommends checking env.unwrapped (TurnLevel is a wrapper by design)
    assert [str(w.message) for w in caught if "env.unwrapped" not in str(w.message)] == []
    env.reset(seed=0)
    with pytest.raises(TypeError, match="text of a turn"):
        env.step(3)
    with pytest.raises(KeyError, match="did you mean"):
        TurnLevel("rlenv/GuesNumber-v0")
