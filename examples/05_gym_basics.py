"""Text generation is just a Gymnasium env: train stock Stable-Baselines3 PPO on it.

What it teaches
---------------
``gym.make("rlenv/…")`` gives an ordinary Gymnasium environment: the observation is a dict of
fixed-shape int arrays (``input_ids``, ``attention_mask``), the action is the next token id, and
the only reward arrives on the last step of an episode. So any off-the-shelf RL library trains on
it without knowing it is looking at text.

Part 1, no language model at all: ``rlenv/TokenReverse-v0`` asks the agent to write a 3-symbol
prompt (over ``a b c d``) backwards. SB3's ``PPO("MultiInputPolicy")`` — an MLP over the raw token
ids — learns it from the terminal reward alone. We print the reward of a random policy,
the trained one, and a few of its answers.

Part 2, a language model as the policy: the same stock ``stable_baselines3.PPO`` trains the
embedded LM on ``rlenv/PositiveReview-v0`` through ``agents.bridges.sb3.LMActorCriticPolicy`` (the LM's
next-token logits are SB3's categorical action distribution; a value head reads its last hidden
state). ``make_sb3_vec_env`` hands SB3 the env from ``gym.make_vec`` (the native batched env), so
16 episodes step as one numpy batch. SB3 is per-transition (no KV cache, every stored transition
re-scored in the update), hence slower than ``rlenv train`` — but it is unmodified SB3.

Measured (seed 0, ``--threads 1``, on the embedded model as rebuilt in commit 05cd2a8; beside other
jobs on a 2-core machine: 60,000 toy steps in 73 s, 10,000 LM steps in 768 s; on an idle machine with
2 threads the earlier build took 24 s + 171 s): toy 0.15 (random) -> 1.00 (greedy); the LM's mean VADER over the first
fifth of its 461 episodes +0.05, over the last fifth +0.64. No KL penalty here (SB3's PPO has none),
so the text drifts toward fragments of praise ("was pretty. The price was pretty. ... Frankly it
every."): reward hacking in the making, in example 04's terms.

Run
---
    python examples/05_gym_basics.py                 # about four minutes on 2 CPU cores
    python examples/05_gym_basics.py --out /tmp/gym  # PNG there
    RLENV_EXAMPLES_QUICK=1 python examples/05_gym_basics.py   # smoke test: a few hundred steps

Writes ``<out>/05_gym_basics.png`` (episode reward against environment steps, both parts).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import gymnasium as gym  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from gymnasium.wrappers import RecordEpisodeStatistics  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.evaluation import evaluate_policy  # noqa: E402

import rlenv  # noqa: E402, F401  (registers the rlenv/… ids)

QUICK = os.environ.get("RLENV_EXAMPLES_QUICK") == "1"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("examples/out"), help="output directory")
    parser.add_argument("--toy-steps", type=int, default=512 if QUICK else 60_000,
                        help="environment steps of SB3 PPO on TokenReverse-v0")
    parser.add_argument("--lm-steps", type=int, default=256 if QUICK else 10_000,
                        help="environment steps (tokens) of SB3 PPO with the LM policy on PositiveReview-v0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1 if QUICK else 2, help="torch CPU threads for the LM part")
    return parser.parse_args()


def rolling_mean(x: np.ndarray, window: int) -> np.ndarray:
    window = max(1, min(window, len(x)))
    return np.convolve(x, np.ones(window) / window, mode="valid")


def play(model: PPO, env: gym.Env, prompt: str) -> tuple[str, float]:
    """One greedy episode on a forced prompt: (completion, reward)."""
    obs, _ = env.reset(options={"prompt": prompt})
    while True:
        action, _ = model.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, info = env.step(int(action))
        if terminated or truncated:
            return info["completion"], float(reward)


def toy_task(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """SB3 PPO with its stock MLP policy on TokenReverse-v0; returns its learning curve."""
    # Training episodes are recorded by the wrapper; evaluation runs on a separate env.
    env = RecordEpisodeStatistics(gym.make("rlenv/TokenReverse-v0"), buffer_length=10**6)
    eval_env = gym.make("rlenv/TokenReverse-v0")
    tokens = env.unwrapped.tokenizer.convert_ids_to_tokens(list(range(env.action_space.n)))
    print("TokenReverse-v0")
    print(f"  observation space: {env.observation_space}")
    print(f"  action space:      {env.action_space}, token ids -> {tokens}")
    obs, info = eval_env.reset(seed=args.seed)
    print(f"  reset -> prompt {info['prompt']!r}, input_ids {obs['input_ids'].tolist()}, "
          f"attention_mask {obs['attention_mask'].tolist()}")

    model = PPO("MultiInputPolicy", env, seed=args.seed, n_steps=128 if QUICK else 512, batch_size=128,
                ent_coef=0.01, learning_rate=1e-3, verbose=0)
    eval_episodes = 20 if QUICK else 300
    before, _ = evaluate_policy(model, eval_env, n_eval_episodes=eval_episodes, deterministic=False, warn=False)
    start = time.perf_counter()
    model.learn(args.toy_steps)
    seconds = time.perf_counter() - start
    after, _ = evaluate_policy(model, eval_env, n_eval_episodes=eval_episodes, deterministic=True, warn=False)

    rewards = np.array(env.return_queue, dtype=float)
    lengths = np.array(env.length_queue, dtype=int)
    print(f"  PPO('MultiInputPolicy'): {args.toy_steps} env steps, {len(rewards)} episodes, {seconds:.0f} s")
    print(f"  mean episode reward over {eval_episodes} episodes: untrained (sampling) {before:.3f} -> "
          f"trained (greedy) {after:.3f}   (1.0 = every symbol reversed)")
    for prompt in ["a b c", "d d a", "b c d"]:
        completion, reward = play(model, eval_env.unwrapped, prompt)
        print(f"    {prompt!r} -> {completion!r}  reward {reward:.2f}")
    return {"steps": np.cumsum(lengths), "reward": rewards, "before": before, "after": after}


def lm_task(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Stock SB3 PPO with the embedded LM as its policy on PositiveReview-v0; returns its curve."""
    from stable_baselines3.common.callbacks import BaseCallback

    from agents.bridges.sb3 import LMActorCriticPolicy, make_sb3_vec_env

    torch.set_num_threads(args.threads)
    n_envs = 4 if QUICK else 16
    env = make_sb3_vec_env("rlenv/PositiveReview-v0", n_envs=n_envs)  # VecMonitor-wrapped
    model = PPO(LMActorCriticPolicy, env, n_steps=16, batch_size=n_envs * 16, n_epochs=4, learning_rate=3e-4,
                seed=args.seed, policy_kwargs=dict(model=rlenv.DEFAULT_MODEL), verbose=0)
    returns: list[float] = []
    steps: list[int] = []

    class Episodes(BaseCallback):
        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    returns.append(float(info["episode"]["r"]))
                    steps.append(self.num_timesteps)
            return True

    print("\nPositiveReview-v0 with stock SB3 PPO + agents.bridges.sb3.LMActorCriticPolicy (the embedded LM)")
    start = time.perf_counter()
    model.learn(args.lm_steps, callback=Episodes())
    seconds = time.perf_counter() - start
    r = np.array(returns)
    k = max(1, len(r) // 5)
    print(f"  {args.lm_steps} env steps, {len(r)} episodes, {seconds:.0f} s; mean VADER of the first {k} "
          f"episodes {r[:k].mean():+.3f}, of the last {k} {r[-k:].mean():+.3f}")
    obs = env.reset()
    for _ in range(64):  # finish one batch of episodes with the trained policy, print one
        actions, _ = model.predict(obs, deterministic=False)
        obs, _, dones, infos = env.step(actions)
        if dones[0]:
            print(f"  e.g. {infos[0].get('prompt', '')!r} -> {infos[0].get('completion', '')!r}")
            break
    env.close()
    return {"steps": np.array(steps), "reward": r}


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # the policy is a tiny MLP: more threads only add overhead
    start = time.perf_counter()
    toy = toy_task(args)
    lm = lm_task(args)

    fig, (ax, ax_lm) = plt.subplots(1, 2, figsize=(12, 4.2))
    window = 200 if not QUICK else 5
    ax.plot(toy["steps"][window - 1:], rolling_mean(toy["reward"], window), color="C0",
            label=f"training episodes ({window}-episode mean)")
    ax.axhline(toy["before"], color="grey", ls=":", label=f"untrained policy ({toy['before']:.2f})")
    ax.axhline(toy["after"], color="C2", ls="--", label=f"trained, greedy ({toy['after']:.2f})")
    ax.set(title="Stock SB3 PPO on rlenv/TokenReverse-v0", xlabel="environment steps (tokens)",
           ylabel="episode reward", ylim=(-0.05, 1.05))
    ax.legend(fontsize=8, loc="lower right")
    lm_window = 50 if not QUICK else 2
    ax_lm.plot(lm["steps"], lm["reward"], ".", color="C1", alpha=0.15, ms=3)
    ax_lm.plot(lm["steps"][lm_window - 1:], rolling_mean(lm["reward"], lm_window), color="C1",
               label=f"training episodes ({lm_window}-episode mean)")
    ax_lm.set(title="Stock SB3 PPO + LMActorCriticPolicy on rlenv/PositiveReview-v0",
              xlabel="environment steps (tokens)", ylabel="episode reward (VADER compound)", ylim=(-1.05, 1.05))
    ax_lm.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    png = args.out / "05_gym_basics.png"
    fig.savefig(png, dpi=110)
    print(f"\nsaved {png} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
