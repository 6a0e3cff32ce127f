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

The registration is light (ids, summaries and entry points); the environment classes, which bring
transformers' tokenizers with them, load on first access (``rlenv.TextGenEnv``) or when an id is
made, so ``rlenv envs`` and an unknown id answer without the heavy stack.
"""

from typing import TYPE_CHECKING

from reward_models.lazy import lazy_getattr
from rlenv.assets import DEFAULT_MODEL_DIR
from rlenv.registration import (
    EnvArgumentError,
    EnvInfo,
    check_env_id,
    envs,
    register_responder_env,
    task_card,
)
from rlenv.tasks import register_all as _register_all

DEFAULT_MODEL: str = str(DEFAULT_MODEL_DIR)
"""Path of the embedded GPT-2-style LM + tokenizer (loadable with ``from_pretrained``)."""

_register_all()

if TYPE_CHECKING:  # the lazy names below, for type checkers and the API reference
    from rlenv.env import TextGenEnv
    from rlenv.prompts import Prompt, PromptSource, PromptSourceError, as_prompt_source
    from rlenv.vector_env import TextGenVectorEnv

_LAZY = {
    "TextGenEnv": "rlenv.env",
    "TextGenVectorEnv": "rlenv.vector_env",
    "Prompt": "rlenv.prompts",
    "PromptSource": "rlenv.prompts",
    "PromptSourceError": "rlenv.prompts",
    "as_prompt_source": "rlenv.prompts",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


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
