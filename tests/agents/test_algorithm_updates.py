"""Each algorithm's whole update against an independent implementation written here.

Two batches go through ``Algorithm.update`` on a tiny random GPT-2: a small hand-built one (fixed
prompts, responses of known lengths — two cut off at the token budget — fixed rewards), and the
realistic one of ``tests/agents/reference_batches.py`` (per-turn rewards, env replies inside the
response, groups of 3, truncated rows, a missing-EOS penalty in the update's rewards). The same
update is then computed from scratch below with a plain forward (no KV cache, no shared helpers of
the library: own logprobs, GAE loop over the policy's steps, whitening, leave-one-out and group
baselines, clipped losses), on a copy of the same weights with the same Adam (or, over several
steps of the realistic batch, at the weights each library step started from, so that Adam's
sign-like first steps cannot amplify float noise). The loss of every optimizer step must agree to
1e-6 and the gradient to 1e-5.
"""

from __future__ import annotations

import copy
import importlib
from pathlib import Path

import pytest
import torch

from agents.algorithms import ALGORITHMS, algorithm_class
from agents.training.config import TrainConfig
from agents.training.policy import LMPolicy
from agents.training.rollout import RolloutBatch
from tests.agents.conftest import build_model, build_tokenizer
from tests.agents.reference_batches import (
    REALISTIC_T,
    assert_steps_equal,
    clipped_pg,
    grads_of,
    load_weights,
    make_realistic_setup,
    minibatch_orders,
    naive_gae,
    plain_forward,
    realistic_batch,
    record_steps,
    seq_sum_mean,
    token_mean,
    whiten_masked,
)

P, T = 3, 4
PROMPTS = ["the movie was", "food", "i liked the", "a film"]
RESPONSES = [
    ["very", "good", "!", "and"],
    ["bad", "<|endoftext|>"],
    ["hotel", "fine", "<|endoftext|>"],
    ["was", "great", "but", "slow"],
]
REWARDS = [0.7, -0.4, 0.2, 1.3]
TRUNCATED = [True, False, False, True]  # rows 0 and 3 hit the budget without EOS


@pytest.fixture(autouse=True)
def _one_thread_seeded():
    torch.manual_seed(0)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---- the hand-built batch ------------------------------------------------------------------------
def hand_built_batch(tok) -> RolloutBatch:
    B = len(PROMPTS)
    ids = torch.full((B, P + T), tok.pad_token_id)
    attn = torch.zeros(B, P + T, dtype=torch.long)
    resp_mask = torch.zeros(B, T)
    for i, (prompt, response) in enumerate(zip(PROMPTS, RESPONSES, strict=True)):
        p = tok(prompt)["input_ids"]
        ids[i, P - len(p) : P] = torch.tensor(p)
        attn[i, P - len(p) : P] = 1
        r = tok.convert_tokens_to_ids(response)
        ids[i, P : P + len(r)] = torch.tensor(r)
        attn[i, P : P + len(r)] = 1
        resp_mask[i, : len(r)] = 1
    truncated = torch.tensor(TRUNCATED)
    return RolloutBatch(
        input_ids=ids,
        attention_mask=attn,
        response_mask=resp_mask,
        actions=ids[:, P:].clone(),
        logprobs=torch.zeros(B, T),
        values=None,
        rewards=torch.tensor(REWARDS),
        terminated=~truncated,
        truncated=truncated,
        prompts=PROMPTS,
        completions=[" ".join(r) for r in RESPONSES],
        prompt_length=P,
    )


# ---- harness ------------------------------------------------------------------------------------------
def make_setup(algo, value_head=False, **overrides):
    tok = build_tokenizer()
    policy = LMPolicy(build_model("gpt2", len(tok), seed=0, dropout=0.0), tok, value_head=value_head)
    reference = LMPolicy(build_model("gpt2", len(tok), seed=1, dropout=0.0), tok).reference()
    fields = dict(
        algo=algo,
        steps=1,
        batch_size=4,
        group_size=2,
        lr=0.05,
        max_grad_norm=0.0,
        seed=3,
        kl_coef=0.1,
        device="cpu",
    )
    fields.update(overrides)
    config = TrainConfig(**fields)
    algorithm = algorithm_class(algo)(policy, config, reference)
    batch = hand_built_batch(tok)
    # a copy of the initial weights for the reference implementation, taken before any update
    model_copy = copy.deepcopy(policy.model)
    head_copy = copy.deepcopy(policy.value_head) if value_head else None
    with torch.no_grad():
        batch.logprobs = plain_forward(policy.model, batch)[0] * batch.response_mask  # the sampler's
    return algorithm, batch, model_copy, head_copy, reference


def minibatch_order(seed, B, size):
    return minibatch_orders(seed, B, size, epochs=1)


def ref_logprobs_of(reference, batch):
    with torch.no_grad():
        return plain_forward(reference.model, batch)[0]


# ---- REINFORCE and RLOO: one on-policy step, minibatches accumulated ------------------------------------
@pytest.mark.parametrize("algo", ["reinforce", "rloo"])
def test_reinforce_and_rloo_update_equals_the_reference(algo):
    algorithm, batch, model, _, reference = make_setup(algo, minibatch_size=2)
    steps = record_steps(algorithm)
    algorithm.update(batch, batch.rewards)

    mask, beta = batch.response_mask, 0.1
    kl = ((batch.logprobs - ref_logprobs_of(reference, batch)) * mask).sum(1)  # k1, summed per episode
    shaped = batch.rewards - beta * kl
    if algo == "reinforce":
        adv = shaped - shaped.mean()
    else:  # leave-one-out within groups of 2 consecutive rows, then the batch std
        adv = torch.stack([shaped[i] - shaped[i ^ 1] for i in range(4)])
        adv = adv / (adv.std() + 1e-8)
    params = [p for p in model.parameters()]
    logp, _ = plain_forward(model, batch)
    loss = seq_sum_mean(-adv.unsqueeze(1) * logp, mask)
    loss.backward()
    # one step for the whole batch although it ran as two minibatches (the old code took two)
    assert_steps_equal(steps, [(loss.item(), grads_of(params))])


# ---- GRPO: pi_old fixed before the first of several steps --------------------------------------------
@pytest.mark.parametrize(("epochs", "minibatch"), [(1, 2), (2, 2), (2, 4)])
def test_grpo_update_equals_the_reference(epochs, minibatch):
    """(2, 4): one minibatch per epoch, so the first epoch's own forward gives pi_old."""
    algorithm, batch, model, _, reference = make_setup("grpo", minibatch_size=minibatch, ppo_epochs=epochs)
    steps = record_steps(algorithm)
    algorithm.update(batch, batch.rewards)

    mask, beta, eps = batch.response_mask, 0.1, 0.2
    r = batch.rewards.view(2, 2)
    adv = ((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4)).reshape(-1)
    ref_logp = ref_logprobs_of(reference, batch)
    with torch.no_grad():
        old = plain_forward(model, batch)[0]
    params = [p for p in model.parameters()]
    optimizer = torch.optim.Adam(params, lr=0.05)
    generator = torch.Generator().manual_seed(3)
    want = []
    for _ in range(epochs):
        order = torch.randperm(4, generator=generator)
        for idx in order.split(minibatch):
            logp, _ = plain_forward(model, batch)
            log_ratio_ref = ref_logp[idx] - logp[idx]
            k3 = torch.exp(log_ratio_ref) - 1 - log_ratio_ref
            per_token = clipped_pg(logp[idx], old[idx], adv[idx].unsqueeze(1), eps) + beta * k3
            # the pg and KL terms are token means of the minibatch, added
            loss = token_mean(
                clipped_pg(logp[idx], old[idx], adv[idx].unsqueeze(1), eps), mask[idx]
            ) + beta * token_mean(k3, mask[idx])
            assert loss.item() == pytest.approx(token_mean(per_token, mask[idx]).item(), abs=1e-6)
            optimizer.zero_grad()
            loss.backward()
            want.append((loss.item(), grads_of(params)))
            optimizer.step()
    assert_steps_equal(steps, want)


@pytest.mark.parametrize(
    ("algo", "minibatch", "forwards"), [("ppo", 4, 2), ("ppo", 2, 5), ("grpo", 4, 2), ("grpo", 2, 5)]
)
def test_pi_old_comes_from_the_first_step_when_an_epoch_is_one_step(algo, minibatch, forwards):
    """Two epochs: with one minibatch per epoch the policy runs one forward per step and no more (the
    first step's forward gives pi_old, and PPO's old values); with two minibatches it needs one up front."""
    algorithm, batch, *_ = make_setup(algo, value_head=algo == "ppo", minibatch_size=minibatch, ppo_epochs=2)
    calls = []
    real = algorithm.policy.score_sequences
    algorithm.policy.score_sequences = lambda *a, **k: calls.append(a[0].shape[0]) or real(*a, **k)
    algorithm.update(batch, batch.rewards)
    assert len(calls) == forwards


def ppo_loss_ref(
    logp, values, idx, old, old_values, advantages, returns, mask, eps=0.2, veps=0.2, vf_coef=0.1
):
    """PPO's loss on minibatch ``idx`` (logp, values already its rows): the clipped surrogate (token mean)
    plus vf_coef times half the clipped squared value error (token mean); clip ranges and vf_coef at
    their defaults."""
    m = mask[idx]
    pg = token_mean(clipped_pg(logp, old[idx], advantages[idx], eps), m)
    v_clipped = old_values[idx] + (values - old_values[idx]).clamp(-veps, veps)
    vf = 0.5 * token_mean(torch.maximum((values - returns[idx]) ** 2, (v_clipped - returns[idx]) ** 2), m)
    return pg + vf_coef * vf


# ---- PPO: value head, KL in the reward, GAE without bootstrap, two epochs ------------------------------
def test_ppo_update_equals_the_reference():
    algorithm, batch, model, head, reference = make_setup(
        "ppo", value_head=True, ppo_epochs=2, gamma=1.0, lam=0.95
    )
    steps = record_steps(algorithm)
    stats = algorithm.update(batch, batch.rewards)

    mask, beta = batch.response_mask, 0.1
    ref_logp = ref_logprobs_of(reference, batch)
    with torch.no_grad():
        old, old_values = plain_forward(model, batch, head)
    lengths = mask.sum(1).long().tolist()
    advantages, returns = torch.zeros(4, T), torch.zeros(4, T)
    for i, n in enumerate(lengths):
        rewards = [-beta * (old[i, t] - ref_logp[i, t]).item() for t in range(n)]  # k1 per token
        rewards[-1] += REWARDS[i]  # the env's score on the last token, truncated or not
        adv = naive_gae(rewards, old_values[i, :n].tolist(), gamma=1.0, lam=0.95)
        advantages[i, :n] = torch.tensor(adv)
        returns[i, :n] = torch.tensor(adv) + old_values[i, :n]
    advantages = whiten_masked(advantages, mask)
    params = list(model.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=0.05)
    generator = torch.Generator().manual_seed(3)
    want = []
    for _ in range(2):
        idx = torch.randperm(4, generator=generator)  # one minibatch: the whole batch, shuffled
        logp, values = plain_forward(model, batch, head)
        loss = ppo_loss_ref(logp[idx], values[idx], idx, old, old_values, advantages, returns, mask)
        optimizer.zero_grad()
        loss.backward()
        want.append((loss.item(), grads_of(params)))
        optimizer.step()
    assert_steps_equal(steps, want)
    assert stats["return_mean"] == pytest.approx(token_mean(returns, mask).item(), abs=1e-6)


# ==== the realistic batch: env replies, per-turn rewards, groups of 3, a missing-EOS penalty ============
def aggregate_ref(per_token, mask, mode):
    if mode == "token-mean":
        return token_mean(per_token, mask)
    if mode == "sequence-sum":
        return seq_sum_mean(per_token, mask)
    return ((per_token * mask).sum(1) / mask.sum(1)).mean()  # sequence-mean


def reinforce_advantages_ref(algo, shaped, group_size, scale):
    if algo == "reinforce":
        return shaped - shaped.mean()
    groups = shaped.view(-1, group_size)
    others = (groups.sum(1, keepdim=True) - groups) / (group_size - 1)  # the mean of the other G - 1
    adv = (groups - others).reshape(-1)
    return adv / (adv.std() + 1e-8) if scale else adv


def reinforce_family_reference(s, algo, aggregation="sequence-sum", scale=True):
    """One on-policy step for the whole batch: -A · log π over the policy's tokens only, where A comes
    from the penalised reward minus beta times the episode's summed k1 KL (policy tokens only)."""
    batch, mask, beta = s.case.batch, s.case.batch.response_mask, s.config.kl_coef
    kl = ((batch.logprobs - s.ref_logprobs) * mask).sum(1)
    adv = reinforce_advantages_ref(algo, s.case.rewards - beta * kl, s.case.group_size, scale)
    params = list(s.model.parameters())
    logp, _ = plain_forward(s.model, batch)
    loss = aggregate_ref(-adv.unsqueeze(1) * logp, mask, aggregation)
    loss.backward()
    return [(loss.item(), grads_of(params))]


REINFORCE_CASES = {
    "reinforce": dict(minibatch_size=3),
    "reinforce-no-kl": dict(kl_coef=0.0),  # no reference loaded: the rewards go straight to the baseline
    "reinforce-token-mean-minibatches": dict(loss_aggregation="token-mean", minibatch_size=2),
    "reinforce-sequence-mean": dict(loss_aggregation="sequence-mean", minibatch_size=3),
    "rloo": dict(minibatch_size=3),
    "rloo-unscaled": dict(scale_advantages=False, minibatch_size=2),
    "rloo-token-mean": dict(loss_aggregation="token-mean", minibatch_size=2),
}


@pytest.mark.parametrize("case", list(REINFORCE_CASES))
def test_reinforce_family_on_the_realistic_batch(case):
    """Catches: env tokens in the loss or KL, the missing-EOS penalty dropped, leave-one-out replaced by
    the mean including self (the unscaled case: with the std division the factor G/(G-1) cancels), a
    minibatch weight that ignores token counts under token-mean."""
    algo = case.split("-")[0]
    overrides = REINFORCE_CASES[case]
    s = make_realistic_setup(algo, **overrides)
    steps = record_steps(s.algorithm)
    s.algorithm.update(s.case.batch, s.case.rewards)
    want = reinforce_family_reference(
        s, algo, overrides.get("loss_aggregation", "sequence-sum"), overrides.get("scale_advantages", True)
    )
    assert_steps_equal(steps, want)


def test_running_mean_baseline_over_several_updates():
    """b_1 = the first batch's mean; then each update uses b_k and sets b_{k+1} = m b_k + (1 - m) mean_k.
    Three updates with shifted rewards, each on a fresh on-policy batch (logprobs of the weights now).
    Each step is compared on a copy of the weights it started from: Adam's sign-like first steps would
    otherwise amplify float noise over three updates."""
    m = 0.8
    s = make_realistic_setup("reinforce", baseline="running-mean", baseline_momentum=m, minibatch_size=3)
    steps = record_steps(s.algorithm)
    batch, mask, beta = s.case.batch, s.case.batch.response_mask, 0.1
    running, want = None, []
    for shift in (0.0, 1.5, -0.7):
        model = copy.deepcopy(s.algorithm.policy.model)  # the weights this update starts from
        with torch.no_grad():
            batch.logprobs = plain_forward(model, batch)[0] * mask  # as a new rollout
        rewards = s.case.rewards + shift
        s.algorithm.update(batch, rewards)

        shaped = rewards - beta * ((batch.logprobs - s.ref_logprobs) * mask).sum(1)
        baseline = shaped.mean() if running is None else running
        running = shaped.mean() if running is None else m * running + (1 - m) * shaped.mean()
        loss = seq_sum_mean(-(shaped - baseline).unsqueeze(1) * plain_forward(model, batch)[0], mask)
        loss.backward()
        want.append((loss.item(), grads_of(list(model.parameters()))))
    assert_steps_equal(steps, want)
    assert s.algorithm.running_baseline == pytest.approx(running.item(), abs=1e-6)


GRPO_CASES = {
    "single-step": dict(),  # the default: one epoch, one minibatch, pi_old = pi
    "epochs-and-minibatches": dict(ppo_epochs=2, minibatch_size=3),
    "unscaled-sequence-mean": dict(
        ppo_epochs=2, minibatch_size=2, scale_advantages=False, loss_aggregation="sequence-mean"
    ),
}


@pytest.mark.parametrize("case", list(GRPO_CASES))
def test_grpo_on_the_realistic_batch(case):
    overrides = GRPO_CASES[case]
    s = make_realistic_setup("grpo", **overrides)
    weights: list = []
    steps = record_steps(s.algorithm, weights)
    s.algorithm.update(s.case.batch, s.case.rewards)

    batch, mask, beta, eps = s.case.batch, s.case.batch.response_mask, 0.1, 0.2
    epochs, size = overrides.get("ppo_epochs", 1), overrides.get("minibatch_size", batch.batch_size)
    mode = overrides.get("loss_aggregation", "token-mean")
    r = s.case.rewards.view(-1, s.case.group_size)
    centred = r - r.mean(1, keepdim=True)
    adv = centred / (r.std(1, keepdim=True) + 1e-4) if overrides.get("scale_advantages", True) else centred
    adv = adv.reshape(-1)
    params = list(s.model.parameters())
    with torch.no_grad():
        old = plain_forward(s.model, batch)[0]  # pi_old: the weights before the first step
    want = []
    for idx, at in zip(minibatch_orders(3, batch.batch_size, size, epochs), weights, strict=True):
        load_weights(params, at)  # each step's gradient at the weights the library took it at
        logp = plain_forward(s.model, batch)[0][idx]
        log_ratio_ref = s.ref_logprobs[idx] - logp
        k3 = torch.exp(log_ratio_ref) - 1 - log_ratio_ref
        loss = aggregate_ref(
            clipped_pg(logp, old[idx], adv[idx].unsqueeze(1), eps), mask[idx], mode
        ) + beta * aggregate_ref(k3, mask[idx], mode)
        loss.backward()
        want.append((loss.item(), grads_of(params)))
    assert_steps_equal(steps, want)


def ppo_targets_ref(s, gamma, lam, whiten_rewards):
    """Per-token rewards on the policy's steps (the env's turn rewards where they were earned, the
    missing-EOS penalty on the last policy token, -beta k1 everywhere), GAE over the policy's steps
    only (an env reply is not a step), advantages whitened; returns (advantages, returns, old, values)."""
    batch, mask, beta, case = s.case.batch, s.case.batch.response_mask, 0.1, s.case
    with torch.no_grad():
        old, old_values = plain_forward(s.model, batch, s.head)
    token_rewards = (case.penalised_turn_rewards - beta * (old - s.ref_logprobs)) * mask
    if whiten_rewards:  # scaled, the mean kept so the reward's sign survives
        token_rewards = whiten_masked(token_rewards, mask, keep_mean=True)
    advantages, returns = torch.zeros_like(mask), torch.zeros_like(mask)
    for i, columns in enumerate(case.policy_columns):
        adv = naive_gae(
            token_rewards[i, columns].tolist(), old_values[i, columns].tolist(), gamma=gamma, lam=lam
        )
        advantages[i, columns] = torch.tensor(adv)
        returns[i, columns] = torch.tensor(adv) + old_values[i, columns]
    return whiten_masked(advantages, mask), returns, old, old_values


@pytest.mark.parametrize("whiten_rewards", [False, True])
def test_ppo_on_the_realistic_batch(whiten_rewards):
    """token_rewards set (the branch real rollouts take); catches env tokens in the loss or value
    targets, the missing-EOS penalty dropped, and --whiten-rewards shifting the mean."""
    gamma, lam = 0.95, 0.9
    s = make_realistic_setup(
        "ppo",
        value_head=True,
        ppo_epochs=2,
        minibatch_size=3,
        gamma=gamma,
        lam=lam,
        whiten_rewards=whiten_rewards,
    )
    weights: list = []
    steps = record_steps(s.algorithm, weights)
    stats = s.algorithm.update(s.case.batch, s.case.rewards)

    mask = s.case.batch.response_mask
    advantages, returns, old, old_values = ppo_targets_ref(s, gamma, lam, whiten_rewards)
    params = list(s.model.parameters()) + list(s.head.parameters())
    want = []
    for idx, at in zip(minibatch_orders(3, s.case.batch.batch_size, 3, epochs=2), weights, strict=True):
        load_weights(params, at)  # each step's gradient at the weights the library took it at
        logp, values = plain_forward(s.model, s.case.batch, s.head)
        loss = ppo_loss_ref(logp[idx], values[idx], idx, old, old_values, advantages, returns, mask)
        loss.backward()
        want.append((loss.item(), grads_of(params)))
    assert_steps_equal(steps, want)
    assert stats["return_mean"] == pytest.approx(token_mean(returns, mask).item(), abs=1e-6)


def test_the_realistic_batch_is_what_it_claims():
    """The batch itself: env tokens in the context but not the mask, per-turn rewards adding up to the
    episode's, a truncated row ending on an env token, groups of 3, a non-zero penalty."""
    case = realistic_batch(build_tokenizer())
    batch, P = case.batch, case.batch.prompt_length
    env_tokens = batch.attention_mask[:, P:].bool() & ~batch.response_mask.bool()
    assert env_tokens.sum() >= 10 and env_tokens.any(1).sum() >= 3
    assert [sorted(c) for c in case.env_columns] == [
        env_tokens[i].nonzero().flatten().tolist() for i in range(6)
    ]
    torch.testing.assert_close(batch.token_rewards.sum(1), batch.rewards)
    torch.testing.assert_close(batch.token_rewards, case.turn_rewards)
    assert (batch.token_rewards != 0).sum(1).max() >= 2  # several turns rewarded in one episode
    assert batch.truncated.sum() == 3 and batch.terminated.sum() == 3
    ends_on_env = [
        i for i in range(6) if batch.truncated[i] and case.env_columns[i][-1:] == [REALISTIC_T - 1]
    ]
    assert ends_on_env, "a row cut inside an env reply (its last column is not the policy's)"
    assert case.group_size == 3 and (case.rewards != batch.rewards).any()
    assert batch.attention_mask[:, :P].sum(1).unique().numel() == 2  # two prompt lengths: left padding

    flat = realistic_batch(build_tokenizer(), flat_group=True)
    assert flat.batch.batch_size == 9 and flat.batch.prompts[:6] == batch.prompts
    torch.testing.assert_close(flat.rewards[:6], case.rewards)
    assert flat.rewards[6:].tolist() == [0.5] * 3 and flat.batch.terminated[6:].all()  # zero variance
    assert flat.env_columns[6] and (flat.batch.token_rewards[6] != 0).sum() == 2  # two turns
    torch.testing.assert_close(flat.batch.token_rewards.sum(1), flat.batch.rewards)


# every test module's REALISTIC_REFERENCES: algorithm name -> the test that checks it on the realistic batch
REALISTIC_REFERENCES = {
    "reinforce": test_reinforce_family_on_the_realistic_batch,
    "rloo": test_reinforce_family_on_the_realistic_batch,
    "grpo": test_grpo_on_the_realistic_batch,
    "ppo": test_ppo_on_the_realistic_batch,
}


def test_every_algorithm_has_a_reference_on_the_realistic_batch():
    """An algorithm added to the registry must be checked on the realistic batch too: its test module
    declares ``REALISTIC_REFERENCES = {name: test_function}`` (see tests/agents/reference_batches.py)."""
    covered: set[str] = set()
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        if "REALISTIC_REFERENCES" in path.read_text():
            covered |= set(importlib.import_module(f"tests.agents.{path.stem}").REALISTIC_REFERENCES)
    missing = sorted(set(ALGORITHMS) - covered)
    assert not missing, (
        f"no reference update on the realistic batch for {missing}: write one with "
        "tests/agents/reference_batches.py and list it in REALISTIC_REFERENCES"
    )
    assert not covered - set(ALGORITHMS), f"REALISTIC_REFERENCES names unregistered algorithms: {covered}"
