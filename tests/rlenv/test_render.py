"""``render_mode="rgb_array"`` and SB3's ``make_vec_env``, which asks for it by default."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import rlenv  # noqa: F401 - registers the ids
from rlenv.render import FRAME_HEIGHT, FRAME_WIDTH, text_frame


def test_rgb_array_draws_the_text_so_far_into_a_fixed_size_frame():
    env = gym.make("rlenv/PositiveReview-v0", render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    assert first.shape == (FRAME_HEIGHT, FRAME_WIDTH, 3) and first.dtype == np.uint8
    assert (first < 128).any() and (first == 255).mean() > 0.5  # dark text on a white frame
    for _ in range(5):
        env.step(env.action_space.sample())
    later = env.render()
    assert later.shape == first.shape and (later < 128).sum() > (first < 128).sum()  # more text, more ink


def test_a_long_text_keeps_its_newest_lines_in_view():
    old, new = text_frame("x " * 2000 + "\nEND"), text_frame("y " * 2000 + "\nEND")
    assert old.shape == (FRAME_HEIGHT, FRAME_WIDTH, 3)
    assert np.array_equal(old[-32:], new[-32:])  # the bottom shows the same last line
    assert not np.array_equal(old, new)


@pytest.mark.parametrize(("env_id", "n_envs"), [("rlenv/TokenReverse-v0", 4), ("rlenv/PositiveReview-v0", 2)])
def test_sb3_make_vec_env_works_with_its_defaults(env_id, n_envs):
    from stable_baselines3.common.env_util import make_vec_env

    venv = make_vec_env(env_id, n_envs=n_envs, seed=0)  # passes render_mode="rgb_array"
    venv.reset()
    rewards = []
    for _ in range(40):
        actions = np.array([venv.action_space.sample() for _ in range(n_envs)])
        _, reward, done, info = venv.step(actions)
        rewards.extend(reward[done])
    assert rewards and all("episode" in i for i, d in zip(info, done, strict=True) if d)  # Monitor saw episodes
    tiled = venv.render()  # SB3 tiles the sub-envs' frames
    assert tiled.ndim == 3 and tiled.shape[2] == 3
    venv.close()


def test_stock_ppo_trains_on_make_vec_env():
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny MLP: threads only add contention
    try:
        venv = make_vec_env("rlenv/TokenReverse-v0", n_envs=4, seed=0)
        model = PPO("MultiInputPolicy", venv, n_steps=32, batch_size=64, n_epochs=2, seed=0).learn(128)
    finally:
        torch.set_num_threads(before)
    assert model.num_timesteps >= 128
