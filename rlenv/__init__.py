"""rlenv: text generation as token-level Gymnasium environments.

``import rlenv`` registers every ``rlenv/<Name>-v<k>`` id; :func:`envs` lists them.

Layers, each importing only those below it (``docs/architecture.md`` draws the arrows):

1. core: :mod:`rlenv.core` (token stepping, ``EpisodeBatch``, the ``EpisodeRules`` interface),
   :mod:`rlenv.prompts`, :mod:`rlenv.tokenizer`, :mod:`rlenv.render`;
2. turns: :mod:`rlenv.turns` (the multi-turn protocol, extending the core through ``EpisodeRules``);
3. chat and tools: conversations rendered by the chat template, tool calls (extending the turns);
4. environments: :mod:`rlenv.env_setup`, :mod:`rlenv.env`, :mod:`rlenv.vector_env` (the Gymnasium
   classes, which hand each layer its options);
5. tasks: :mod:`rlenv.tasks` builders (prompts + reward + defaults), :mod:`rlenv.remote`;
6. registration: :mod:`rlenv.registration` and the task table in ``rlenv.tasks``; above it
   :mod:`rlenv.wrappers`, :mod:`rlenv.hf_dataset`, :mod:`rlenv.multiturn` (the public multi-turn
   names gathered), :mod:`rlenv.serving` and this package.
"""

from rlenv.env import TextGenEnv
from rlenv.prompts import Prompt, PromptSource, PromptSourceError, as_prompt_source
from rlenv.registration import (
    EnvArgumentError,
    EnvInfo,
    check_env_id,
    envs,
    register_responder_env,
    task_card,
)
from rlenv.tasks import register_all as _register_all
from rlenv.tokenizer import DEFAULT_MODEL
from rlenv.vector_env import TextGenVectorEnv

_register_all()

__all__ = [
    "DEFAULT_MODEL",
    "EnvArgumentError",
    "EnvInfo",
    "Prompt",
    "PromptSource",
    "PromptSourceError",
    "TextGenEnv",
    "TextGenVectorEnv",
    "as_prompt_source",
    "check_env_id",
    "envs",
    "register_responder_env",
    "task_card",
]
