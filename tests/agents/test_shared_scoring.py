"""The update's shared scoring (issue 24): each distinct prompt once per group, responses bucketed by
length. Its logprobs, values, entropies, losses and gradients equal the plain padded forward's to
float rounding, for every architecture, with and without groups, for the policy and the reference;
and it really runs less: a group's prompt once, no bucket padded to the batch's longest row."""

from __future__ import annotations

import pytest
import torch

from agents.algorithms import algorithm_class
from agents.training.config import TrainConfig
from agents.training.rollout import collect_rollouts
from agents.training.scoring import distinct_prompts, length_buckets
from tests.agents.conftest import ARCHS, make_policy
from tests.agents.test_rollout import boost_eos, make_envs

pytestmark = pytest.mark.usefixtures("single_thread")


def grouped_batch(policy, group_size=4, num_envs=12, seed=0):
    envs = make_envs(policy, num_envs=num_envs, max_new_tokens=8)
    options = {"group_size": group_size} if group_size > 1 else None
    batch = collect_rollouts(
        policy, envs, seed=seed, options=options, with_values=policy.value_head is not None
    )
    lengths = batch.response_mask.sum(1)
    assert lengths.min() < lengths.max(), "the batch should mix response lengths"
    return batch


def both_paths(policy, batch, **kw):
    out = []
    for shared in (False, True):
        policy.shared_scoring = shared
        out.append(policy.score_sequences(batch.input_ids, batch.attention_mask, batch.prompt_length, **kw))
    return out


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("group_size", [1, 4])
def test_shared_scores_equal_the_padded_forward(arch, group_size):
    policy = boost_eos(make_policy(arch, value_head=True), bias=1.5)
    batch = grouped_batch(policy, group_size)
    plain, shared = both_paths(policy, batch, with_values=True, with_entropy=True)
    m = batch.response_mask.bool()
    for a, b in (
        (plain.logprobs, shared.logprobs),
        (plain.values, shared.values),
        (plain.entropy, shared.entropy),
    ):
        assert a.shape == b.shape == batch.response_mask.shape
        torch.testing.assert_close(b[m], a[m], atol=1e-5, rtol=1e-5)
    # and both score what the rollout sampled
    torch.testing.assert_close(shared.logprobs[m], batch.logprobs[m], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("algo", ["grpo", "ppo", "reinforce"])
def test_shared_scoring_gives_the_same_loss_and_gradients(algo):
    """A whole update's loss and every parameter's gradient, against the plain path on the same batch."""
    config = TrainConfig(algo=algo, steps=1, batch_size=12, group_size=4, kl_coef=0.1)
    grads, stats = [], []
    for shared in (False, True):
        policy = boost_eos(make_policy("gpt2", value_head=algo == "ppo"), bias=1.5)
        policy.shared_scoring = shared
        reference = policy.reference()
        algorithm = algorithm_class(algo)(policy, config, reference)
        batch = grouped_batch(policy, 4 if algo == "grpo" else 1)
        captured = {}
        step = algorithm.step

        def capture(step=step, policy=policy, captured=captured):
            captured.update({n: p.grad.clone() for n, p in policy.named_parameters() if p.grad is not None})
            return step()

        algorithm.step = capture
        stats.append(algorithm.update(batch, batch.rewards))
        grads.append(captured)
    assert stats[0]["loss"] == pytest.approx(stats[1]["loss"], abs=1e-5, rel=1e-5)
    assert stats[0]["kl"] == pytest.approx(stats[1]["kl"], abs=1e-6)
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, atol=1e-5, rtol=1e-4, msg=name)


def test_a_groups_prompt_runs_once_and_buckets_skip_padding():
    policy = boost_eos(make_policy("gpt2"), bias=1.5)
    batch = grouped_batch(policy, group_size=4)
    shapes = []
    policy.model.register_forward_pre_hook(
        lambda module, args, kwargs: shapes.append(kwargs["input_ids"].shape), with_kwargs=True
    )
    policy.score_sequences(batch.input_ids, batch.attention_mask, batch.prompt_length)
    assert shapes[0][0] == len(set(batch.prompts)) < 12  # the prompt pass: one row per group
    fed = sum(rows * cols for rows, cols in shapes)
    padded = 12 * (batch.attention_mask.bool().any(0).sum())
    assert fed < padded  # fewer token-columns than the single padded forward


def test_reference_follows_the_policys_setting():
    policy = make_policy("gpt2")
    policy.shared_scoring = False
    assert policy.reference().shared_scoring is False


def test_distinct_prompts_needs_ids_and_mask_to_agree():
    ids = torch.tensor([[5, 6], [5, 6], [7, 6], [5, 6]])
    mask = torch.tensor([[1, 1], [1, 1], [1, 1], [0, 1]])  # row 3: the same ids, but a shorter prompt
    first_row, inverse = distinct_prompts(ids, mask)
    assert first_row.numel() == 3
    assert inverse[0] == inverse[1] != inverse[3] and inverse[2] not in (inverse[0], inverse[3])
    assert torch.equal(inverse[first_row], torch.arange(3))  # each distinct prompt's row holds it


def test_length_buckets_cut_only_where_it_pays():
    same = length_buckets(torch.tensor([5, 5, 5, 5]))
    assert len(same) == 1 and sorted(same[0].tolist()) == [0, 1, 2, 3]
    mixed = length_buckets(torch.tensor([2, 30, 3, 29, 2, 31]), overhead=0.1)
    assert [sorted(b.tolist()) for b in mixed] == [[1, 3, 5], [0, 2, 4]]  # long rows apart from short ones
    assert len(length_buckets(torch.tensor([2, 30, 3, 29]), overhead=10.0)) == 1  # a forward costs too much
    many = length_buckets(torch.arange(1, 65) * 7, max_buckets=4, overhead=0.0)
    assert len(many) == 4 and sorted(torch.cat(many).tolist()) == list(range(64))
