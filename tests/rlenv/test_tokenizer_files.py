"""A model folder saved without its tokenizer: one error that says to save the tokenizer into it, from the
env, the policy and the command line (not transformers' "install sentencepiece or tiktoken")."""

from __future__ import annotations

import shutil

import pytest

from rlenv import DEFAULT_MODEL
from rlenv.tokenizer import TOKENIZER_FILES, load_tokenizer


@pytest.fixture
def model_without_tokenizer(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL, folder)
    for name in TOKENIZER_FILES:
        (folder / name).unlink(missing_ok=True)
    return folder


def test_the_env_names_the_missing_tokenizer_and_the_fix(model_without_tokenizer) -> None:
    with pytest.raises(
        FileNotFoundError, match="has no tokenizer files .* save the tokenizer into the folder"
    ):
        load_tokenizer(model_without_tokenizer)


def test_the_policy_names_the_missing_tokenizer_and_the_fix(model_without_tokenizer) -> None:
    from agents.training.policy import LMPolicy

    with pytest.raises(FileNotFoundError, match="save the tokenizer into the folder"):
        LMPolicy.from_pretrained(model_without_tokenizer, device="cpu")


def test_the_command_line_prints_it_as_one_line(model_without_tokenizer, capsys) -> None:
    from agents.cli import main

    assert (
        main(
            [
                "eval",
                "--env",
                "rlenv/PositiveReview-v0",
                "--model",
                str(model_without_tokenizer),
                "--episodes",
                "2",
                "--device",
                "cpu",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert (
        err.startswith("error: ")
        and "save the tokenizer into the folder" in err
        and len(err.splitlines()) == 1
    )


def test_a_folder_with_its_tokenizer_still_loads() -> None:
    assert load_tokenizer(DEFAULT_MODEL).eos_token_id is not None
