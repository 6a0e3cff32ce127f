"""Each algorithm's whole update against an independent implementation written here.

A hand-built batch (fixed prompts, responses of known lengths — two cut off at the token budget —
fixed rewards) goes through ``Algorithm.update`` on a tiny random GPT-2; the same update is then
computed from scratch below with a plain forward (no KV cache, no shared helpers of the library:
own logprobs, GAE loop, whitening, leave-one-out and group baselines, clipped losses), on a copy of
the same weights with the same Adam. The loss of every optimizer step must agree to 1e-6 and the
gradient to 1e-5.
"""

from __future__ import annotations

import copy

import pytest
import torch

from agents.algorithms import algorithm_class
from agents.config import TrainConfig
from agents.policy import LMPolicy
from agents.rollout import RolloutBatch
from tests.agents.conftest import build_model, build_tokenizer

P, T = 3, 4
PROMPTS = ["the movie was", "food", "i liked the", "a film"]
RESPONSES = [["very", "good", "!", "and"], ["bad", "<|endoftext|>"], ["hotel", "fine", "<|endoftext|>"],
             ["was", "great", "but", "slow"]]
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
        input_ids=ids, attention_mask=attn, response_mask=resp_mask, actions=ids[:, P:].clone(),
        logprobs=torch.zeros(B, T), values=None, rewards=torch.tensor(REWARDS), terminated=~truncated,
        truncated=truncated, prompts=PROMPTS, completions=[" ".join(r) for r in RESPONSES], prompt_length=P,
    )


# ---- the independent reference ---------------------------------------------------------------------
def plain_forward(model, batch, value_head=None):
    """Logprobs (B, T) of the response tokens and values (B, T) of the states before them."""
    attn = batch.attention_mask
    positions = (attn.cumsum(-1) - 1).clamp_min(0)
    out = model(input_ids=batch.input_ids, attention_mask=attn, position_ids=positions, output_hidden_states=True)
    logits = out.logits[:, P - 1 : -1].float()  # column c predicts token c + 1
    logp = torch.log_softmax(logits, dim=-1).gather(-1, batch.input_ids[:, P:, None]).squeeze(-1)
    values = None
    if value_head is not None:
        values = value_head(out.hidden_states[-1][:, P - 1 : -1]).squeeze(-1)
    return logp, values


def token_mean(x, mask):
    return (x * mask).sum() / mask.sum()


def seq_sum_mean(x, mask):
    return (x * mask).sum(1).mean()


def naive_gae(rewards, values, length, gamma, lam):
    """Per-token advantages of one episode; the value after its last token is 0 (the return is complete)."""
    adv, running = [0.0] * length, 0.0
    for t in reversed(range(length)):
        next_value = values[t + 1] if t + 1 < length else 0.0
        delta = rewards[t] + gamma * next_value - values[t]
        running = delta + gamma * lam * running
        adv[t] = running
    return adv


def whiten_masked(x, mask):
    vals = x[mask.bool()]
    return torch.where(mask.bool(), (x - vals.mean()) / torch.sqrt(vals.var(unbiased=True) + 1e-8), torch.zeros_like(x))


def clipped_pg(logp, old, adv, eps):
    ratio = torch.exp(logp - old)
    return torch.maximum(-adv * ratio, -adv * ratio.clamp(1 - eps, 1 + eps))


def grads_of(params):
    return [p.grad.detach().clone() for p in params]


# ---- harness ------------------------------------------------------------------------------------------
def make_setup(algo, value_head=False, **overrides):
    tok = build_tokenizer()
    policy = LMPolicy(build_model("gpt2", len(tok), seed=0, dropout=0.0), tok, value_head=value_head)
    reference = LMPolicy(build_model("gpt2", len(tok), seed=1, dropout=0.0), tok).reference()
    fields = dict(algo=algo, steps=1, batch_size=4, group_size=2, lr=0.05, max_grad_norm=0.0, seed=3,
                  kl_coef=0.1, device="cpu")
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


def record_steps(algorithm):
    """Wrap the algorithm's backward/step to record each optimizer step's loss and gradient."""
    steps = []
    real_backward, real_step = algorithm.backward, algorithm.step
    pending = {"loss": 0.0}

    def backward(loss):
        pending["loss"] += loss.item()
        real_backward(loss)

    def step():
        params = [p for g in algorithm.optimizer.param_groups for p in g["params"]]
        steps.append((pending["loss"], grads_of(params)))
        pending["loss"] = 0.0
        return real_step()

    algorithm.backward, algorithm.step = backward, step
    return steps


def assert_steps_equal(got, want):
    assert len(got) == len(want)
    for (loss_a, grads_a), (loss_b, grads_b) in zip(got, want, strict=True):
        assert loss_a == pytest.approx(loss_b, abs=1e-6)
        for ga, gb in zip(grads_a, grads_b, strict=True):
            torch.testing.assert_close(ga, gb, atol=1e-5, rtol=1e-4)


def minibatch_order(seed, B, size):
    order = torch.randperm(B, generator=torch.Generator().manual_seed(seed))
    return [order[i : i + size] for i in range(0, B, size)]


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
@pytest.mark.parametrize("epochs", [1, 2])
def test_grpo_update_equals_the_reference(epochs):
    algorithm, batch, model, _, reference = make_setup("grpo", minibatch_size=2, ppo_epochs=epochs)
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
        for idx in (order[:2], order[2:]):
            logp, _ = plain_forward(model, batch)
            log_ratio_ref = ref_logp[idx] - logp[idx]
            k3 = torch.exp(log_ratio_ref) - 1 - log_ratio_ref
            per_token = clipped_pg(logp[idx], old[idx], adv[idx].unsqueeze(1), eps) + beta * k3
            # the pg and KL terms are token means of the minibatch, added
            loss = token_mean(clipped_pg(logp[idx], old[idx], adv[idx].unsqueeze(1), eps), mask[idx]) + \
                beta * token_mean(k3, mask[idx])
            assert loss.item() == pytest.approx(token_mean(per_token, mask[idx]).item(), abs=1e-6)
            optimizer.zero_grad()
            loss.backward()
            want.append((loss.item(), grads_of(params)))
            optimizer.step()
    assert_steps_equal(steps, want)


# ---- PPO: value head, KL in the reward, GAE without bootstrap, two epochs ------------------------------
def test_ppo_update_equals_the_reference():
    algorithm, batch, model, head, reference = make_setup("ppo", value_head=True, ppo_epochs=2, gamma=1.0, lam=0.95)
    steps = record_steps(algorithm)
    stats = algorithm.update(batch, batch.rewards)

    mask, beta, eps, veps, vf_coef = batch.response_mask, 0.1, 0.2, 0.2, 0.1
    ref_logp = ref_logprobs_of(reference, batch)
    with torch.no_grad():
        old, old_values = plain_forward(model, batch, head)
    lengths = mask.sum(1).long().tolist()
    advantages, returns = torch.zeros(4, T), torch.zeros(4, T)
    for i, n in enumerate(lengths):
        rewards = [-beta * (old[i, t] - ref_logp[i, t]).item() for t in range(n)]  # k1 per token
        rewards[-1] += REWARDS[i]  # the env's score on the last token, truncated or not
        adv = naive_gae(rewards, old_values[i, :n].tolist(), n, gamma=1.0, lam=0.95)
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
        logp, values, m = logp[idx], values[idx], mask[idx]
        pg = token_mean(clipped_pg(logp, old[idx], advantages[idx], eps), m)
        v_clipped = old_values[idx] + (values - old_values[idx]).clamp(-veps, veps)
        vf = 0.5 * token_mean(torch.maximum((values - returns[idx]) ** 2, (v_clipped - returns[idx]) ** 2), m)
        loss = pg + vf_coef * vf
        optimizer.zero_grad()
        loss.backward()
        want.append((loss.item(), grads_of(params)))
        optimizer.step()
    assert_steps_equal(steps, want)
    assert stats["return_mean"] == pytest.approx(token_mean(returns, mask).item(), abs=1e-6)
