import math

import pytest
import torch

from agents.training.losses import (
    aggregate,
    clipped_surrogate_loss,
    clipped_value_loss,
    entropy_from_logits,
    masked_mean,
    policy_gradient_loss,
)


def test_masked_mean_ignores_nan_in_padding():
    x = torch.tensor([[1.0, 3.0, float("nan")], [float("-inf"), 5.0, 7.0]])
    mask = torch.tensor([[1, 1, 0], [0, 1, 1]])
    assert masked_mean(x, mask).item() == 4.0
    torch.testing.assert_close(masked_mean(x, mask, dim=1), torch.tensor([2.0, 6.0]))
    assert masked_mean(x, torch.zeros_like(mask)).item() == 0.0


def test_aggregate_modes_hand_computed():
    per_token = torch.tensor([[1.0, 2.0, 3.0], [4.0, 9.0, 9.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    assert aggregate(per_token, mask, "token-mean").item() == 2.5  # 10 / 4 tokens
    assert aggregate(per_token, mask, "sequence-mean").item() == 3.0  # (2 + 4) / 2
    assert aggregate(per_token, mask, "sequence-sum").item() == 5.0  # (6 + 4) / 2
    with pytest.raises(ValueError, match="token-mean"):
        aggregate(per_token, mask, "mean")


def test_clipped_surrogate_hand_computed():
    old = torch.zeros(1, 4)
    logprobs = torch.log(torch.tensor([[0.5, 1.0, 1.5, 7.0]])).requires_grad_(True)
    adv = torch.tensor([[-1.0, 1.0, 1.0, 1.0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    loss, stats = clipped_surrogate_loss(logprobs, old, adv, mask, clip_range=0.2)
    # per token max(-A r, -A clip(r)): [max(0.5, 0.8), -1, max(-1.5, -1.2)] = [0.8, -1, -1.2]
    torch.testing.assert_close(loss, torch.tensor(-1.4 / 3))
    torch.testing.assert_close(stats["clipfrac"], torch.tensor(2 / 3))
    r = torch.tensor([0.5, 1.0, 1.5])
    torch.testing.assert_close(stats["approx_kl"], ((r - 1) - r.log()).mean())
    loss.backward()
    # only the unclipped token moves: d(-A r)/d logprob = -A r = -1, over 3 tokens
    torch.testing.assert_close(logprobs.grad, torch.tensor([[0.0, -1 / 3, 0.0, 0.0]]))


def test_sequence_level_advantages_broadcast():
    lp = torch.zeros(2, 3)
    mask = torch.ones(2, 3)
    seq, _ = clipped_surrogate_loss(lp, lp, torch.tensor([1.0, 2.0]), mask, clip_range=0.2)
    tok, _ = clipped_surrogate_loss(lp, lp, torch.tensor([[1.0] * 3, [2.0] * 3]), mask, clip_range=0.2)
    assert seq.item() == tok.item() == -1.5


def test_clipped_value_loss_hand_computed():
    values = torch.tensor([[1.0, 2.0]], requires_grad=True)
    old = torch.tensor([[0.0, 2.0]])
    returns = torch.tensor([[1.0, 0.0]])
    loss, stats = clipped_value_loss(values, old, returns, torch.ones(1, 2), clip_range=0.5)
    # V_clipped = [0.5, 2]; max(err, err_clipped) = [max(0, 0.25), 4]; 0.5 * mean = 1.0625
    torch.testing.assert_close(loss, torch.tensor(1.0625))
    torch.testing.assert_close(stats["vf_clipfrac"], torch.tensor(0.5))
    loss.backward()
    torch.testing.assert_close(values.grad, torch.tensor([[0.0, 1.0]]))  # first is clipped: no grad


def test_policy_gradient_loss():
    lp = torch.tensor([[-1.0, -2.0], [-3.0, -4.0]], requires_grad=True)
    mask = torch.tensor([[1, 1], [1, 0]])
    loss = policy_gradient_loss(lp, torch.tensor([2.0, -1.0]), mask, "sequence-sum")
    torch.testing.assert_close(loss, torch.tensor((2 * 3 + -1 * 3) / 2))  # -(A * sum logp) per seq
    loss.backward()
    torch.testing.assert_close(lp.grad, torch.tensor([[-1.0, -1.0], [0.5, 0.0]]))


def test_entropy_from_logits():
    torch.testing.assert_close(entropy_from_logits(torch.zeros(4)), torch.tensor(math.log(4)))
    filtered = torch.tensor([0.0, 0.0, 0.0, float("-inf")])
    torch.testing.assert_close(entropy_from_logits(filtered), torch.tensor(math.log(3)))
    assert entropy_from_logits(torch.tensor([50.0, 0.0, -50.0])).item() < 1e-6


def test_clipfrac_counts_ratios_outside_the_range_whatever_the_advantage_sign():
    """TRL / OpenAI baselines: the share of tokens with |r - 1| > eps. A token at r = 1.5 with a
    negative advantage is outside the range though its unclipped term is the active one."""
    old = torch.zeros(1, 3)
    logprobs = torch.log(torch.tensor([[1.5, 1.1, 0.7]]))
    adv = torch.tensor([[-1.0, 1.0, 1.0]])
    _, stats = clipped_surrogate_loss(logprobs, old, adv, torch.ones(1, 3), clip_range=0.2)
    torch.testing.assert_close(stats["clipfrac"], torch.tensor(2 / 3))
