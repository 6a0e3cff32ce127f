import json

import numpy as np
import pytest

from rlenv.prompts import (
    CallablePrompts,
    IterablePrompts,
    ListPrompts,
    PromptSourceError,
    as_prompt_source,
    read_prompt_file,
)


def test_list_sampling_is_seeded():
    source = as_prompt_source(["a", "b", "c", "d"])
    draws = lambda seed: [source.sample(np.random.default_rng(seed)).text for _ in range(1)]  # noqa: E731
    assert isinstance(source, ListPrompts)
    rng1, rng2 = np.random.default_rng(3), np.random.default_rng(3)
    assert [source.sample(rng1).text for _ in range(20)] == [source.sample(rng2).text for _ in range(20)]
    assert draws(0) == draws(0)


def test_dict_items_carry_columns():
    source = as_prompt_source([{"prompt": "2+2=", "answer": "4"}])
    prompt = source.sample(np.random.default_rng(0))
    assert prompt.text == "2+2=" and prompt.columns == {"answer": "4"}


def test_txt_file_skips_blank_lines(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("first prompt\n\nsecond prompt\n")
    source = read_prompt_file(path)
    assert [p.text for p in source.prompts] == ["first prompt", "second prompt"]


def test_jsonl_file_extra_columns(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [{"prompt": "1+1=", "answer": 2}, {"prompt": "3+4=", "answer": 7}]))
    source = as_prompt_source(str(path))
    assert [p.columns["answer"] for p in source.prompts] == [2, 7]


def test_empty_file_names_the_file(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n \n")
    with pytest.raises(PromptSourceError, match="empty.txt.*no prompts"):
        read_prompt_file(path)


def test_malformed_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "ok"}\n{"prompt": oops}\n')
    with pytest.raises(PromptSourceError, match=r"bad.jsonl:2: malformed JSON"):
        read_prompt_file(path)


def test_jsonl_record_without_prompt_key_names_line(tmp_path):
    path = tmp_path / "nokey.jsonl"
    path.write_text('{"prompt": "ok"}\n{"text": "no prompt key"}\n')
    with pytest.raises(PromptSourceError, match=r"nokey.jsonl:2: expected a 'prompt' key"):
        read_prompt_file(path)


def test_missing_file_and_bare_word():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_prompt_file("/nonexistent/prompts.txt")
    with pytest.raises(PromptSourceError, match=r"prompts=\['hello'\]"):
        as_prompt_source("hello")


def test_callable_uses_the_env_rng():
    source = as_prompt_source(lambda rng: f"{int(rng.integers(100))}+1=")
    assert isinstance(source, CallablePrompts)
    a = [source.sample(np.random.default_rng(7)).text for _ in range(3)]
    b = [source.sample(np.random.default_rng(7)).text for _ in range(3)]
    assert a == b


def test_iterable_runs_out_with_a_clear_error():
    source = as_prompt_source(iter(["x", "y"]))
    assert isinstance(source, IterablePrompts)
    rng = np.random.default_rng(0)
    assert [source.sample(rng).text for _ in range(2)] == ["x", "y"]
    with pytest.raises(PromptSourceError, match="ran out after 2"):
        source.sample(rng)


def test_empty_list_and_bad_items():
    with pytest.raises(PromptSourceError, match="empty"):
        as_prompt_source([])
    with pytest.raises(PromptSourceError, match=r"prompt list\[1\]"):
        as_prompt_source(["ok", 3])
