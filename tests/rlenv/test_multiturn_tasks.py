"""The multi-turn tasks: the env's replies, rewards and the no-feedback variant; SB3 learns the toy."""

import gymnasium as gym
import numpy as np
import pytest

import rlenv  # noqa: F401
from rlenv.wrappers import TurnLevel


def secret(env):
    return env.unwrapped._episodes.prompts[0].columns["answer"]


def test_guess_number_toy_replies_are_single_tokens_and_the_game_ends():
    env = gym.make("rlenv/GuessNumberToy-v0")
    tok = env.unwrapped.tokenizer
    env.reset(seed=1)
    s = secret(env)
    wrong = (s + 1) % 4
    _, r, term, trunc, info = env.step(tok.convert_tokens_to_ids(str(wrong)))
    assert r == pytest.approx(-0.1) and not term and info["reply"] == ("lower" if wrong > s else "higher")
    assert len(info["env_ids"]) == 1
    env.step(tok.convert_tokens_to_ids(str(wrong)))
    _, r, term, trunc, info = env.step(tok.convert_tokens_to_ids(str(wrong)))
    assert term and not trunc and r == pytest.approx(-0.1)  # lost after 3 guesses: terminated, not truncated
    env.reset(seed=1)
    _, r, term, _, _ = env.step(tok.convert_tokens_to_ids(str(s)))
    assert term and r == 1.0


def test_no_feedback_replaces_every_reply_with_one_fixed_reply():
    replies = set()
    for feedback in (True, False):
        env = TurnLevel("rlenv/GuessNumber-v0", feedback=feedback)  # 1..8, one token per guess, cue "I guess "
        for seed in range(4):
            env.reset(seed=seed)
            s = secret(env)
            for guess in (1 if s > 1 else 2, 8 if s < 8 else 7):
                replies.add((feedback, env.step(str(guess))[4]["reply"]))
    assert replies == {(True, "\nhigher\nI guess "), (True, "\nlower\nI guess "), (False, "\nwrong\nI guess ")}


def test_guess_number_cue_follows_the_prompt_and_every_reply_and_max_turns_ends_the_game():
    for feedback, hint in ((True, "lower"), (False, "wrong")):
        env = TurnLevel("rlenv/GuessNumber-v0", high=8, cue="Guess: ", max_turns=2, max_turn_tokens=1,
                        max_prompt_tokens=32, feedback=feedback)
        text, _ = env.reset(seed=0)
        assert text.endswith("one number per line.\nGuess: ")
        wrong = 9  # above every secret
        text, r, term, _, info = env.step(str(wrong))  # a one-token turn: no newline of its own
        assert info["reply"] == f"\n{hint}\nGuess: " and text.endswith(f"Guess: 9\n{hint}\nGuess: ")
        assert r == pytest.approx(-0.1) and not term
        _, r, term, trunc, info = env.step(str(wrong))
        assert term and not trunc and r == pytest.approx(-0.1) and info["reply"] == ""  # lost after 2
    # a turn that ends its own line gets no second newline
    env = TurnLevel("rlenv/GuessNumber-v0", high=8, cue="> ", max_turn_tokens=None)
    env.reset(seed=0)
    assert env.step("9")[4]["reply"] == "lower\n> "


def test_calculator_inserts_results_and_scores_the_final_answer():
    for feedback, reply in ((True, "36\n"), (False, "?\n")):
        env = TurnLevel("rlenv/Calculator-v0", feedback=feedback)
        env.reset(seed=0)
        answer = secret(env)
        text, r, term, _, info = env.step("calc(12*3)")
        assert info["reply"] == reply and r == 0.0 and not term and text.endswith("calc(12*3)\n" + reply)
        _, r, term, _, _ = env.step(f"it is {answer}")
        assert term and r == 1.0
    env = TurnLevel("rlenv/Calculator-v0", max_calls=1)
    env.reset(seed=0)
    env.step("calc(2*2)")
    _, r, term, _, _ = env.step("calc(3*3)")  # past max_calls a call is taken as the (wrong) answer
    assert term and r == 0.0


def train_and_eval(feedback: bool, steps: int, seed: int = 0) -> tuple[float, float]:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.evaluation import evaluate_policy

    torch.set_num_threads(1)
    # separate, seeded train and evaluation envs; the RNGs are re-seeded after the untrained
    # evaluation (whose sampled actions would otherwise shift training's torch RNG): deterministic
    env = gym.make("rlenv/GuessNumberToy-v0", feedback=feedback)
    eval_env = gym.make("rlenv/GuessNumberToy-v0", feedback=feedback)
    model = PPO("MultiInputPolicy", env, seed=seed, n_steps=512, batch_size=128, ent_coef=0.01, learning_rate=1e-3)
    eval_env.reset(seed=10_000 + seed)
    before, _ = evaluate_policy(model, eval_env, n_eval_episodes=300, deterministic=False, warn=False)
    model.set_random_seed(seed)
    model.learn(steps)
    after, _ = evaluate_policy(model, eval_env, n_eval_episodes=300, deterministic=True, warn=False)
    return before, after


@pytest.mark.slow
def test_sb3_ppo_learns_guess_number_toy_and_uses_the_feedback():
    before, after = train_and_eval(True, 20_000)
    _, blind = train_and_eval(False, 20_000)
    # optimum with feedback (binary search) 0.90; without it (distinct guesses) 0.60. Deterministic
    # per seed; at this budget seeds 0, 1, 3 reach 0.87-0.89 with feedback and seed 2 stalls at 0.55
    # (a local optimum that ignores the replies), so this checks one seed, not a success rate.
    assert before < 0.2 and after > 0.8 and blind < 0.7 and after - blind > 0.15, (before, after, blind)
    assert np.isfinite([before, after, blind]).all()


def test_spending_the_token_budget_loses_a_game_that_has_max_turns():
    """A game with max_turns that ends early without the number costs what losing costs (every guess not
    made is charged, and the game is over: terminated); without max_turns the budget is a time limit."""
    for max_turns, reward, terminated in ((5, -0.5, True), (None, -0.1, False)):
        env = TurnLevel("rlenv/GuessNumber-v0", max_turns=max_turns, max_turn_tokens=None, cue="", max_new_tokens=6)
        env.reset(seed=0)
        wrong = 1 if secret(env) > 1 else 2
        _, r, term, trunc, _ = env.step(f"{wrong} is my guess and here are more words")
        assert r == pytest.approx(reward) and term == terminated and trunc == (not terminated)


def test_a_range_beyond_one_token_guesses_names_the_fix():
    with pytest.raises(ValueError, match="max_turn_tokens=None"):
        gym.make("rlenv/GuessNumber-v0", high=20)
    env = gym.make("rlenv/GuessNumber-v0", high=20, max_turn_tokens=None)  # a turn ends at a newline
    _, info = env.reset(seed=0)
    assert "from 1 to 20" in info["prompt"]
