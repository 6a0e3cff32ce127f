import pytest
import torch

from agents.training.advantages import gae_advantages, group_advantages, leave_one_out_advantages, whiten
from agents.training.distributed import Ranks


def naive_gae(rewards, values, length, gamma, lam, bootstrap=0.0):
    """Textbook GAE for one episode of ``length`` steps, written as plainly as possible."""
    advantages = [0.0] * length
    running = 0.0
    for t in reversed(range(length)):
        next_value = values[t + 1] if t + 1 < length else bootstrap
        delta = rewards[t] + gamma * next_value - values[t]
        running = delta + gamma * lam * running
        advantages[t] = running
    return advantages


def test_gae_hand_worked_example():
    rewards = torch.tensor([[0.0, 0.0, 1.0]])
    values = torch.tensor([[0.5, 0.4, 0.3]])
    adv, ret = gae_advantages(rewards, values, torch.ones(1, 3), gamma=0.9, lam=0.8)
    # delta2 = 1 - 0.3 = 0.7; delta1 = 0.9*0.3 - 0.4 = -0.13; delta0 = 0.9*0.4 - 0.5 = -0.14
    # A2 = 0.7; A1 = -0.13 + 0.72*0.7 = 0.374; A0 = -0.14 + 0.72*0.374 = 0.12928
    torch.testing.assert_close(adv, torch.tensor([[0.12928, 0.374, 0.7]]))
    torch.testing.assert_close(ret, torch.tensor([[0.62928, 0.774, 1.0]]))


def test_gae_bootstraps_after_last_step_and_zeroes_padding():
    rewards = torch.tensor([[0.0, 1.0, 0.0]])
    values = torch.tensor([[0.5, 0.4, 9.0]])  # the padded column's value must not leak in
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    adv, ret = gae_advantages(rewards, values, mask, gamma=0.9, lam=0.8, bootstrap=torch.tensor([2.0]))
    # delta1 = 1 + 0.9*2 - 0.4 = 2.4; A0 = (0.9*0.4 - 0.5) + 0.72*2.4 = 1.588
    torch.testing.assert_close(adv, torch.tensor([[1.588, 2.4, 0.0]]))
    torch.testing.assert_close(ret, torch.tensor([[2.088, 2.8, 0.0]]))
    adv_no_boot, _ = gae_advantages(rewards, values, mask, gamma=0.9, lam=0.8)
    torch.testing.assert_close(adv_no_boot, torch.tensor([[-0.14 + 0.72 * 0.6, 0.6, 0.0]]))


@pytest.mark.parametrize("gamma,lam", [(1.0, 1.0), (0.99, 0.95), (0.5, 0.0)])
def test_gae_matches_naive_loop(gamma, lam):
    g = torch.Generator().manual_seed(0)
    B, T = 6, 9
    rewards, values = torch.randn(B, T, generator=g), torch.randn(B, T, generator=g)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    mask = (torch.arange(T) < lengths[:, None]).float()
    bootstrap = torch.randn(B, generator=g)
    adv, ret = gae_advantages(rewards, values, mask, gamma=gamma, lam=lam, bootstrap=bootstrap)
    for i in range(B):
        n = int(lengths[i])
        want = naive_gae(rewards[i].tolist(), values[i].tolist(), n, gamma, lam, float(bootstrap[i]))
        torch.testing.assert_close(adv[i, :n], torch.tensor(want), rtol=1e-5, atol=1e-5)
        assert adv[i, n:].abs().sum() == 0 and ret[i, n:].abs().sum() == 0
    torch.testing.assert_close(ret * mask, (adv + values) * mask)


def test_whiten_over_mask():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 100.0, -50.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    out = whiten(x, mask)
    valid = out[mask.bool()]
    assert abs(valid.mean().item()) < 1e-6
    assert abs(valid.std().item() - 1.0) < 1e-4
    assert out[1, 1] == 0 and out[1, 2] == 0
    kept = whiten(x, mask, shift_mean=False)[mask.bool()]
    assert abs(kept.mean().item() - 2.5) < 1e-5  # (1+2+3+4)/4


@pytest.mark.parametrize("shift_mean", [True, False])
def test_whiten_data_parallel_path_equals_the_one_process_path(monkeypatch, shift_mean):
    """Through ``ranks`` the statistics come from Ranks.mean_and_std's all-reduced count, sum and sum of
    squares; with the all-reduce of a single rank (the identity) that must be the one-process whitening,
    and a batch without one valid token on any rank (every completion masked) gives zeros, not an error."""
    monkeypatch.setattr(torch.distributed, "all_reduce", lambda tensor, op=None: None)
    ranks = Ranks(rank=0, world_size=2)
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 100.0, -50.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    want = whiten(x, mask, shift_mean=shift_mean)
    torch.testing.assert_close(
        whiten(x, mask, shift_mean=shift_mean, ranks=ranks), want, rtol=1e-6, atol=1e-6
    )
    none = torch.zeros_like(mask)
    assert whiten(x, none, shift_mean=shift_mean, ranks=ranks).abs().sum() == 0
    assert whiten(x, none, shift_mean=shift_mean).abs().sum() == 0


def test_group_advantages_hand_computed():
    r = torch.tensor([1.0, 2.0, 3.0, 5.0, 5.0, 5.0])
    torch.testing.assert_close(group_advantages(r, 3, eps=0.0)[:3], torch.tensor([-1.0, 0.0, 1.0]))
    assert group_advantages(r, 3)[3:].abs().sum() == 0  # identical rewards: no signal, no NaN
    torch.testing.assert_close(
        group_advantages(r * 10, 3, scale_by_std=False), torch.tensor([-10.0, 0.0, 10.0, 0.0, 0.0, 0.0])
    )


def test_leave_one_out_hand_computed():
    r = torch.tensor([1.0, 2.0, 3.0, 0.0, 4.0, 8.0])
    # baseline for r_i is the mean of the other two: (2+3)/2, (1+3)/2, (1+2)/2 ...
    torch.testing.assert_close(leave_one_out_advantages(r, 3), torch.tensor([-1.5, 0.0, 1.5, -6.0, 0.0, 6.0]))


def test_group_size_errors_name_the_problem():
    with pytest.raises(ValueError, match="must divide"):
        group_advantages(torch.zeros(5), 2)
    with pytest.raises(ValueError, match="group_size >= 2"):
        leave_one_out_advantages(torch.zeros(4), 1)


def test_gae_over_a_mask_with_holes_equals_gae_over_the_valid_steps():
    """Multi-turn rows: env tokens (mask 0) between the policy's turns are skipped by the recursion."""
    rewards = torch.tensor([[0.0, 1.0, 9.0, 9.0, 0.5, 2.0, 0.0]])
    values = torch.tensor([[0.3, -0.2, 7.0, 7.0, 0.1, 0.4, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0]])
    adv, ret = gae_advantages(rewards, values, mask, gamma=0.9, lam=0.8)
    want = naive_gae([0.0, 1.0, 0.5, 2.0], [0.3, -0.2, 0.1, 0.4], 4, 0.9, 0.8)
    torch.testing.assert_close(adv[0, [0, 1, 4, 5]], torch.tensor(want))
    assert (adv[0, [2, 3, 6]] == 0).all() and (ret[0, [2, 3, 6]] == 0).all()
