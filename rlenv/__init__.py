"""rlenv: text generation as token-level Gymnasium environments.

``import rlenv`` registers every ``rlenv/<Name>-v<k>`` id; :func:`envs` lists them.

The registration is light (ids, summaries and lazy entry points); the environment classes, which
bring transformers' tokenizers with them, load on first access (``rlenv.TextGenEnv``) or when an
id is made, so ``rlenv envs`` and an unknown id answer without the heavy stack.
"""

from pathlib import Path

DEFAULT_MODEL: str = str(Path(__file__).parent / "assets" / "default_model")
"""Path of the embedded GPT-2-style LM + tokenizer (loadable with ``from_pretrained``)."""

from reward_models.lazy import lazy_getattr  # noqa: E402
from rlenv.registration import EnvArgumentError, EnvInfo, check_env_id, envs  # noqa: E402
from rlenv.tasks import register_all as _register_all  # noqa: E402

_register_all()

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
]
