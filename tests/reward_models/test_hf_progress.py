"""transformers' progress bars are hidden inside rlenv's loads and saves, and the user's setting survives."""

from __future__ import annotations

import os

import pytest
from huggingface_hub import utils as hub_utils
from transformers.utils import logging as hf_logging

from reward_models.hf_progress import transformers_bars_hidden


@pytest.fixture
def bars_on():
    """transformers' and huggingface_hub's bars on for the test, the session's setting restored after."""
    if os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS"):
        pytest.skip("HF_HUB_DISABLE_PROGRESS_BARS is set, so huggingface_hub's bars cannot be switched on")
    was_on, hub_was_off = hf_logging.is_progress_bar_enabled(), hub_utils.are_progress_bars_disabled()
    hf_logging.enable_progress_bar()
    yield
    (hf_logging.enable_progress_bar if was_on else hf_logging.disable_progress_bar)()
    (hub_utils.disable_progress_bars if hub_was_off else hub_utils.enable_progress_bars)()


def test_hidden_inside_and_on_again_after(bars_on) -> None:
    with transformers_bars_hidden():
        assert not hf_logging.is_progress_bar_enabled()
    assert hf_logging.is_progress_bar_enabled() and not hub_utils.are_progress_bars_disabled()


def test_restored_when_the_block_raises(bars_on) -> None:
    with pytest.raises(RuntimeError), transformers_bars_hidden():
        raise RuntimeError("a load failed")
    assert hf_logging.is_progress_bar_enabled()


def test_a_user_who_switched_them_off_keeps_them_off(bars_on) -> None:
    hf_logging.disable_progress_bar()
    with transformers_bars_hidden():
        pass
    assert not hf_logging.is_progress_bar_enabled()


def test_huggingface_hub_bars_switched_off_on_their_own_stay_off(bars_on) -> None:
    """transformers' switch flips huggingface_hub's too; a user who had only the hub's off keeps them off."""
    hub_utils.disable_progress_bars()
    with transformers_bars_hidden():
        pass
    assert hf_logging.is_progress_bar_enabled() and hub_utils.are_progress_bars_disabled()
