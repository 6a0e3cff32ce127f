"""rlenv: text generation as token-level Gymnasium environments.

``import rlenv`` registers every ``rlenv/<Name>-v<k>`` id; :func:`envs` lists them.
"""

from pathlib import Path

DEFAULT_MODEL: str = str(Path(__file__).parent / "assets" / "default_model")
"""Path of the embedded GPT-2-style LM + tokenizer (loadable with ``from_pretrained``)."""

from rlenv.env import TextGenEnv  # noqa: E402
from rlenv.prompts import Prompt, PromptSource, PromptSourceError, as_prompt_source  # noqa: E402
from rlenv.registration import EnvArgumentError, EnvInfo, check_env_id, envs, task_card  # noqa: E402
from rlenv.tasks import register_all as _register_all  # noqa: E402
from rlenv.vector_env import TextGenVectorEnv  # noqa: E402

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
    "task_card",
]
