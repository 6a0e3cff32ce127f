"""rlenv.env_setup: every env keyword reaches the one layer that owns it, checked before anything loads."""

from __future__ import annotations

import inspect
from dataclasses import fields

import pytest

from rlenv import TextGenEnv
from rlenv.core import CoreOptions
from rlenv.env_setup import make_setup
from rlenv.vector_env import TextGenVectorEnv
from tests.rlenv.conftest import PROMPTS, count_good


def keyword_defaults(func) -> dict[str, object]:
    params = inspect.signature(func).parameters.values()
    return {p.name: p.default for p in params if p.name != "self" and p.kind is not p.VAR_KEYWORD}


def test_the_envs_keywords_are_make_setups_and_the_cores_with_the_same_defaults() -> None:
    """TextGenEnv spells out its keywords for users; make_setup takes its layers' own and passes the
    rest to CoreOptions. A keyword added to one and not the other, or a default that drifts, fails here."""
    owners = {**keyword_defaults(make_setup), **{f.name: f.default for f in fields(CoreOptions)}}
    public = keyword_defaults(TextGenEnv.__init__)
    assert public.pop("render_mode") is None  # the env's own
    assert public == owners


@pytest.mark.parametrize(
    ("option", "match"),
    [
        ({"max_new_tokens": 0}, "max_new_tokens must be >= 1"),
        ({"max_prompt_tokens": 0}, "max_prompt_tokens must be >= 1"),
        ({"prompt_overflow": "drop"}, "prompt_overflow must be 'truncate' or 'error'"),
        ({"stop_strings": ["END", ""]}, "stop_strings must be non-empty strings"),
    ],
)
def test_a_bad_core_option_is_refused_before_the_tokenizer_loads(option, match) -> None:
    # the tokenizer path does not exist: loading it would raise FileNotFoundError instead
    with pytest.raises(ValueError, match=match):
        TextGenEnv("/no/such/model", PROMPTS, count_good, **option)
    with pytest.raises(ValueError, match=match):
        TextGenVectorEnv(2, tokenizer="/no/such/model", prompts=PROMPTS, reward_model=count_good, **option)


def test_an_unknown_keyword_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="max_new_tokns"):
        TextGenVectorEnv(2, tokenizer="/no/such/model", max_new_tokns=3)


def test_one_stop_string_is_a_tuple_of_one(word_tokenizer) -> None:
    setup = make_setup(word_tokenizer, PROMPTS, count_good, stop_strings="END", max_new_tokens=4)
    assert setup.stop_strings == ("END",) and setup.max_new_tokens == 4
