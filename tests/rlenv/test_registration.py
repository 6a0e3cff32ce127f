"""Reading a registered id's task without building it (rlenv.registration)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlenv.registration import UnknownEnvError, has_splits

ROOT = Path(__file__).resolve().parents[2]
SPLIT_TASKS = (
    "rlenv/PositiveReview-v0",
    "rlenv/Brief-v0",
    "rlenv/Keyword-v0",
    "rlenv/ContinueReview-v0",
    "rlenv/Arithmetic-v0",
)


def test_has_splits_is_true_for_the_named_tasks_and_false_for_the_generic_id() -> None:
    assert all(has_splits(env_id) for env_id in SPLIT_TASKS)
    assert not has_splits("rlenv/TextGen-v0")  # its builder passes TextGenEnv's kwargs through: no split=


def test_has_splits_refuses_a_mistyped_id_with_the_close_match() -> None:
    with pytest.raises(UnknownEnvError, match="did you mean 'rlenv/PositiveReview-v0'"):
        has_splits("rlenv/PositveReview-v0")


def test_has_splits_imports_no_torch() -> None:
    """rlenv bench checks its grid's tasks with it before torch loads (its --help and input errors)."""
    code = (
        "import sys; from rlenv.registration import has_splits; assert has_splits('rlenv/Keyword-v0'); "
        "print([m for m in ('torch', 'transformers') if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.stdout.strip() == "[]", done.stderr
