"""Training on an env the user built: ``TrainConfig(env=factory)`` with ``factory() -> TextGenEnv``.

The trainer needs a batched, synchronous env (``TextGenVectorEnv`` with autoreset disabled). A factory
returns one ordinary env — ``gym.make("rlenv/TextGen-v0", reward_model=my_fn)``, a named task with
other prompts, anything built on :class:`rlenv.TextGenEnv` — and this module runs ``batch_size``
copies of its resolved setup (tokenizer, prompts, reward model, budgets) as one vector env, so a
Python object such as a reward function or a prompt generator never has to be named by a string.
"""

from __future__ import annotations

from typing import Any

from agents.errors import ConfigError
from agents.training.config import env_label
from rlenv import TextGenEnv, TextGenVectorEnv
from rlenv.core import EpisodeRules
from rlenv.tokenizer import load_tokenizer


def vector_env_from_factory(
    factory: Any, num_envs: int, max_new_tokens: int | None, tokenizer_path: str
) -> TextGenVectorEnv:
    """``num_envs`` synchronous copies of the env ``factory()`` returns (``max_new_tokens`` overrides its
    budget). Raises :class:`ConfigError` when it is not a single-turn rlenv env in the policy's tokenizer."""
    label = env_label(factory)
    env = factory()
    base = getattr(env, "unwrapped", env)
    try:
        if not isinstance(base, TextGenEnv):
            raise ConfigError(
                f"the env factory {label} returned a {type(base).__name__}; it must return an rlenv TextGenEnv, e.g. "
                "gym.make('rlenv/TextGen-v0', reward_model=my_reward) (the trainer runs batch_size copies of it)"
            )
        setup = base.setup
        if type(setup.rules) is not EpisodeRules:  # a layer above the core: turns, chat or tools
            raise ConfigError(
                f"the env factory {label} returned a multi-turn or chat env ({type(setup.rules).__name__}), whose "
                "responder, template and tools the trainer cannot copy; "
                "register it as an id (rlenv.registration.register_task) and train on the id"
            )
        _check_same_vocabulary(setup.tokenizer, tokenizer_path, label)
    finally:
        env.close()
    return TextGenVectorEnv(
        num_envs,
        autoreset_mode="Disabled",
        tokenizer=setup.tokenizer,
        prompts=setup.prompts,
        reward_model=setup.reward_model,
        max_prompt_tokens=setup.max_prompt_tokens,
        max_new_tokens=max_new_tokens or setup.max_new_tokens,
        stop_strings=setup.stop_strings,
        prompt_overflow=setup.prompt_overflow,
    )


def _check_same_vocabulary(tokenizer: Any, tokenizer_path: str, label: str) -> None:
    """The policy acts in its own tokenizer's ids: an env in another vocabulary would read them as other words."""
    policy_tokenizer = load_tokenizer(tokenizer_path)
    if len(tokenizer) != len(policy_tokenizer) or tokenizer.eos_token_id != policy_tokenizer.eos_token_id:
        raise ConfigError(
            f"the env factory {label} builds its env with a tokenizer of {len(tokenizer)} ids (EOS "
            f"{tokenizer.eos_token_id}), but the policy's ({tokenizer_path}) has {len(policy_tokenizer)} (EOS "
            f"{policy_tokenizer.eos_token_id}); pass tokenizer={tokenizer_path!r} to the env inside the factory"
        )
