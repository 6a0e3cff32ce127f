import math

import pytest
import torch

from agents.training.kl import AdaptiveKLController, FixedKLController, kl_estimate


def test_estimators_closed_form():
    lp, ref = torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.5, -1.0]])
    d = lp - ref
    torch.testing.assert_close(kl_estimate(lp, ref, "k1"), d)
    torch.testing.assert_close(kl_estimate(lp, ref, "k2"), 0.5 * d**2)
    torch.testing.assert_close(kl_estimate(lp, ref, "k3"), torch.exp(-d) - 1 + d)
    with pytest.raises(ValueError, match="k3"):
        kl_estimate(lp, ref, "k4")


def test_k3_is_nonnegative_and_zero_at_equality():
    g = torch.Generator().manual_seed(0)
    lp, ref = torch.randn(64, 32, generator=g) * 3, torch.randn(64, 32, generator=g) * 3
    assert (kl_estimate(lp, ref, "k3") >= 0).all()
    assert kl_estimate(lp, lp, "k3").abs().max() == 0


def test_k1_and_k3_are_unbiased_on_a_sampled_categorical():
    g = torch.Generator().manual_seed(0)
    logp = torch.log_softmax(torch.randn(10, generator=g), -1)
    logq = torch.log_softmax(torch.randn(10, generator=g), -1)
    true_kl = (logp.exp() * (logp - logq)).sum().item()
    n = 200_000
    x = torch.multinomial(logp.exp(), n, replacement=True, generator=g)
    for kind in ("k1", "k3"):
        est = kl_estimate(logp[x], logq[x], kind)
        stderr = est.std().item() / math.sqrt(n)
        assert abs(est.mean().item() - true_kl) < 4 * stderr, kind


def test_fixed_controller():
    ctl = FixedKLController(0.05)
    ctl.update(100.0, 64)
    assert ctl.value == 0.05
    with pytest.raises(ValueError):
        FixedKLController(-1)


def test_adaptive_controller_proportional_with_clipped_error():
    ctl = AdaptiveKLController(0.2, target=6.0, horizon=10_000)
    ctl.update(current_kl=12.0, n_steps=100)  # error 1.0 clipped to 0.2
    assert ctl.value == pytest.approx(0.2 * (1 + 0.2 * 100 / 10_000))
    ctl2 = AdaptiveKLController(0.2, target=6.0, horizon=10_000)
    ctl2.update(current_kl=5.4, n_steps=100)  # error -0.1, inside the clip
    assert ctl2.value == pytest.approx(0.2 * (1 - 0.1 * 100 / 10_000))
    restored = AdaptiveKLController(1.0, target=1.0, horizon=1)
    restored.load_state_dict(ctl.state_dict())
    assert restored.state_dict() == ctl.state_dict()
    restored.update(0.0, 100)
    ctl.update(0.0, 100)
    assert restored.value == ctl.value
