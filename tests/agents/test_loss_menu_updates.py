"""The 2026 loss menu (dapo, gspo, cispo, sapo, reinforce_pp, rebn): each whole update against the paper's
formula written out here, plus a mutation check each.

Two batches go through ``Algorithm.update`` on a tiny random GPT-2, and through the same reference per
algorithm (one function each, below). The hand-built batch: six episodes in groups of two — two rows cut
off at the token budget, a group whose rewards are equal (zero variance), two multi-turn rows whose env
tokens sit between the policy's turns (``response_mask`` holes) and carry per-turn rewards. The
realistic batch of ``tests/agents/reference_batches.py`` with its zero-variance group: nine episodes in
groups of three, per-turn rewards around env replies, three rows truncated (one inside an env reply)
and a non-zero missing-EOS penalty in the rewards the trainer passes (``episode_rewards``); DAPO goes
through ``collect`` as in training, so dynamic sampling masks or replaces the flat group.

The same update is computed from scratch here (plain forward without KV cache, own advantages,
surrogates and aggregation, none of the library's loss or advantage helpers) at the weights each of
the library's steps started from: every optimizer step's loss must agree to 1e-6 and its gradient to
1e-5. The mutation check runs the nearest neighbour's formula (DAPO with a symmetric clip, GSPO with
token ratios, CISPO without the stop-gradient, SAPO with one temperature or a hard clip, REINFORCE++
normalised per group, ReBN with episode instead of turn returns or without the normalisation) on the
same batch: it must NOT agree with the algorithm, so the comparison can tell the two apart. (Each
mutation was also made in the library by hand, and the matching tests failed.)
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch

from agents.algorithms import algorithm_class
from agents.algorithms.dynamic_sampling import refill_informative_groups
from agents.training.config import TrainConfig
from agents.training.losses import rollout_importance_weights
from agents.training.policy import LMPolicy
from agents.training.rollout import RolloutBatch
from tests.agents.conftest import build_model, build_tokenizer
from tests.agents.reference_batches import (
    forward_with_entropy,
    make_realistic_setup,
    seq_sum_mean,
    token_mean,
)

P, T, G = 3, 6, 2
EOS, ENV = "<|endoftext|>", None  # ENV marks a column the env wrote (a hole in the policy's mask)
PROMPTS = ["the movie was", "food", "i liked the", "a film", "the hotel", "service"]
# (response tokens, which of them the env wrote, per-column rewards or None for a terminal reward)
EPISODES = [
    (["very", "good", "!", "and", "so", "fine"], [], None),  # truncated: no EOS within T = 6
    (["bad", EOS], [], None),
    (["hotel", "fine", EOS], [], None),
    (["was", "great", "the", "movie", "slow", EOS], [2, 3], {1: 0.5, 5: -0.3}),  # two turns, env in between
    (["good", "food", "is", "it", "clean", "room"], [2, 3], {1: 1.0, 5: 0.3}),  # two turns, truncated
    (["film", "was", "good", EOS], [], None),
]
REWARDS = [0.7, -0.4, 0.2, 0.2, 1.3, -0.2]  # group 1 (rows 2, 3) has zero variance
TRUNCATED = [True, False, False, False, True, False]
LR, SEED, BETA = 0.05, 3, 0.1


pytestmark = pytest.mark.usefixtures("single_thread")  # tiny-model matmuls: one torch thread


# ---- the hand-built batch ------------------------------------------------------------------------
def hand_built_batch(tok) -> RolloutBatch:
    B, pad = len(PROMPTS), tok.pad_token_id
    id_rows, attn_rows, mask_rows, reward_rows = [], [], [], []
    for i, (prompt, (response, env_cols, turn_rewards)) in enumerate(zip(PROMPTS, EPISODES, strict=True)):
        p, r = tok(prompt)["input_ids"], tok.convert_tokens_to_ids(response)
        id_rows.append(
            [pad] * (P - len(p)) + p + r + [pad] * (T - len(r))
        )  # left-padded prompt, then response
        attn_rows.append([0] * (P - len(p)) + [1] * (len(p) + len(r)) + [0] * (T - len(r)))
        mask_rows.append([float(c < len(r) and c not in env_cols) for c in range(T)])
        columns = turn_rewards if turn_rewards is not None else {len(r) - 1: REWARDS[i]}
        reward_rows.append([columns.get(c, 0.0) for c in range(T)])
    ids, attn = torch.tensor(id_rows), torch.tensor(attn_rows)
    resp_mask, token_rewards = torch.tensor(mask_rows), torch.tensor(reward_rows)
    assert torch.allclose(token_rewards.sum(1), torch.tensor(REWARDS))
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
        completions=[" ".join(e[0]) for e in EPISODES],
        prompt_length=P,
        token_rewards=token_rewards,
    )


# ---- the independent reference ---------------------------------------------------------------------
# One reference per algorithm, written from its paper: a function of the batch's advantages (computed
# here from its rewards) and the mask of the tokens learned from, returning the loss of one minibatch
# ``loss_of(logp, old, entropy, idx)``. The hand-built batch above and the realistic one of
# tests/agents/reference_batches.py (groups of 3, a missing-EOS penalty, a zero-variance group) both
# go through the same references.
def sequence_mean(x, mask):
    return ((x * mask).sum(1) / mask.sum(1).clamp(min=1)).mean()


def group_normalised(rewards, group_size=G):
    r = rewards.view(-1, group_size)
    return ((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4)).reshape(-1)


def run_reference(model, batch, loss_of: Callable, *, epochs: int, minibatch: int, weights=None):
    """Every optimizer step's (loss, grads): ``loss_of(logp, old, entropy, idx)`` on minibatches drawn
    like the algorithm's (randperm from a generator seeded with the run's seed, per epoch).

    The weights of step k are Adam's (same lr), or ``weights[k]`` when given: the algorithm's own
    weights before its step k. Adam divides by the gradient's running RMS, so float noise in a
    near-zero gradient moves a weight by up to lr; comparing each step at the same weights checks
    the formula without that amplification."""
    B = batch.input_ids.shape[0]
    with torch.no_grad():
        old, _ = forward_with_entropy(model, batch)
    params = list(model.parameters())
    optimizer = torch.optim.Adam(params, lr=LR)
    generator = torch.Generator().manual_seed(SEED)
    steps = []
    for _ in range(epochs):
        order = torch.randperm(B, generator=generator)
        for start in range(0, B, minibatch):
            idx = order[start : start + minibatch]
            if weights is not None:
                with torch.no_grad():
                    for p, w in zip(params, weights[len(steps)], strict=True):
                        p.copy_(w)
            logp, entropy = forward_with_entropy(model, batch)
            loss = loss_of(logp[idx], old[idx], entropy[idx], idx)
            optimizer.zero_grad()
            loss.backward()
            steps.append((loss.item(), [p.grad.detach().clone() for p in params]))
            optimizer.step()
    return steps


# ---- harness ------------------------------------------------------------------------------------------
def make_setup(algo, **overrides):
    tok = build_tokenizer()
    policy = LMPolicy(build_model("gpt2", len(tok), seed=0, dropout=0.0), tok)
    reference = LMPolicy(build_model("gpt2", len(tok), seed=1, dropout=0.0), tok).reference()
    fields = dict(
        algo=algo, steps=1, batch_size=6, group_size=G, lr=LR, max_grad_norm=0.0, seed=SEED, device="cpu"
    )
    fields.update(overrides)
    config = TrainConfig(**fields)
    algorithm = algorithm_class(algo)(policy, config, reference if config.kl_coef > 0 else None)
    batch = hand_built_batch(tok)
    initial = copy.deepcopy(policy.model)  # the reference implementation starts from these weights
    with torch.no_grad():
        batch.logprobs = forward_with_entropy(policy.model, batch)[0] * batch.response_mask  # the sampler's
    return algorithm, batch, initial, reference


def update_steps(algorithm, batch):
    """Run the algorithm's update on ``batch`` with the rewards the trainer gives it, recording each
    optimizer step's loss and gradient (and, in ``algorithm.weights_before_step``, the weights that
    step's forward used)."""
    steps, pending = [], {"loss": 0.0}
    algorithm.weights_before_step = []
    real_backward, real_step = algorithm.backward, algorithm.step

    def backward(loss):
        pending["loss"] += loss.item()
        real_backward(loss)

    def step():
        params = [p for g in algorithm.optimizer.param_groups for p in g["params"]]
        steps.append((pending["loss"], [p.grad.detach().clone() for p in params]))
        algorithm.weights_before_step.append(
            [p.detach().clone() for p in algorithm.policy.model.parameters()]
        )
        pending["loss"] = 0.0
        return real_step()

    algorithm.backward, algorithm.step = backward, step
    stats = algorithm.update(batch, algorithm.episode_rewards(batch))
    return steps, stats


def steps_agree(got, want) -> bool:
    if len(got) != len(want):
        return False
    for (loss_a, grads_a), (loss_b, grads_b) in zip(got, want, strict=True):
        if abs(loss_a - loss_b) > 1e-6:
            return False
        if not all(torch.allclose(a, b, atol=1e-5, rtol=1e-4) for a, b in zip(grads_a, grads_b, strict=True)):
            return False
    return True


def check(algorithm, batch, initial, correct: Callable, *mutants: Callable, **run) -> dict:
    """The algorithm agrees with ``correct``, and each nearest neighbour in ``mutants`` does not."""
    got, stats = update_steps(algorithm, batch)
    run["weights"] = algorithm.weights_before_step
    want = run_reference(copy.deepcopy(initial), batch, correct, **run)
    for (loss_a, grads_a), (loss_b, grads_b) in zip(got, want, strict=True):
        assert loss_a == pytest.approx(loss_b, abs=1e-6)
        for a, b in zip(grads_a, grads_b, strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert len(got) == len(want)
    for mutant in mutants:
        assert not steps_agree(got, run_reference(copy.deepcopy(initial), batch, mutant, **run)), (
            "the nearest neighbour's formula gives the same update: this batch cannot tell them apart"
        )
    return stats


def clipped(logp, old, adv, low, high):
    ratio = torch.exp(logp - old)
    return torch.maximum(-adv * ratio, -adv * ratio.clamp(1 - low, 1 + high))


def learned_mask(batch, *, drop_truncated=False, drop_rows=()):
    """(B, T) the policy's tokens, less the truncated rows or the rows ``drop_rows`` if asked."""
    keep = torch.ones(batch.batch_size)
    if drop_truncated:
        keep = keep * (~batch.truncated).float()
    keep[list(drop_rows)] = 0.0
    return batch.response_mask * keep.unsqueeze(1)


def top_entropy_only(per_token, entropy, mask, quantile):
    """Zero the loss of the tokens below the (1 - quantile) entropy quantile of the minibatch's tokens."""
    threshold = torch.quantile(entropy.detach()[mask.bool()], 1 - quantile)
    return per_token * (entropy.detach() >= threshold).float()


# ---- the references, one per algorithm ----------------------------------------------------------------
def overlong_ref(batch):
    """(B,) DAPO's soft overlong punishment: 0 up to T - L used columns, then -1/L per column to -1 at
    T, over the last L = 20% of the token budget; 'used' counts up to the last policy token."""
    T = batch.response_mask.shape[1]
    cache = 0.2 * T
    out = []
    for row in batch.response_mask:
        used = max(c for c in range(T) if row[c]) + 1
        out.append(min(0.0, (T - cache - used) / cache))
    return torch.tensor(out)


def dapo_ref(adv, mask, *, high=0.28, top_entropy=None):
    """Clip-higher (eps_low 0.2, eps_high ``high``) on group advantages (B,), token mean over ``mask``."""

    def loss(logp, old, entropy, idx):
        per_token = clipped(logp, old, adv[idx].unsqueeze(1), 0.2, high)
        if top_entropy is not None:
            per_token = top_entropy_only(per_token, entropy, mask[idx], top_entropy)
        return token_mean(per_token, mask[idx])

    return loss


def gspo_ref(adv, mask, *, sequence_ratio=True):
    """s_i = exp(mean_t log r_it) over the row's policy tokens, clipped to [1 - 3e-4, 1 + 4e-4], mean over
    sequences; mutated: GRPO's token ratios with GSPO's clip range."""

    def loss(logp, old, _, idx):
        m, a = mask[idx], adv[idx]
        if not sequence_ratio:
            return sequence_mean(clipped(logp, old, a.unsqueeze(1), 3e-4, 4e-4), m)
        s = torch.exp(((logp - old) * m).sum(1) / m.sum(1))  # (b,) the length-normalised sequence ratio
        return torch.maximum(-a * s, -a * s.clamp(1 - 3e-4, 1 + 4e-4)).mean()

    return loss


def cispo_ref(adv, mask, *, stop_gradient=True):
    """-sg(min(r, 5)) A log pi on every token (the cap 1 + eps_high, eps_high = 4), token mean."""

    def loss(logp, old, _, idx):
        weight = torch.exp(logp - old).clamp(max=5.0)
        weight = weight.detach() if stop_gradient else weight
        return token_mean(-weight * adv[idx].unsqueeze(1) * logp, mask[idx])

    return loss


def sapo_ref(adv, mask, *, tau_neg=1.05, hard_clip=False):
    """-f(r) A with f(r) = sigmoid(tau (r - 1)) 4 / tau, tau 1 for A > 0 and ``tau_neg`` otherwise, a mean
    over sequences of token means; mutated: PPO's hard clip at 0.2 in place of the gate."""

    def loss(logp, old, _, idx):
        a = adv[idx].unsqueeze(1).expand_as(logp)
        if hard_clip:
            return sequence_mean(clipped(logp, old, a, 0.2, 0.2), mask[idx])
        tau = torch.where(a > 0, torch.tensor(1.0), torch.tensor(tau_neg))
        gate = torch.sigmoid(tau * (torch.exp(logp - old) - 1)) * 4 / tau
        return sequence_mean(-gate * a, mask[idx])

    return loss


def reinforce_pp_advantages(token_rewards, mask, kl, *, beta, gamma=1.0, group_size=None):
    """-beta k1 in every policy token's reward on top of the env's (``token_rewards``, penalties
    included), discounted returns-to-go over the policy's tokens only, whitened over the batch's tokens
    (or, mutated with ``group_size``, each group's rows)."""
    B, T = mask.shape
    rewards = token_rewards - beta * kl * mask
    returns = torch.zeros(B, T)
    for i in range(B):
        running = 0.0
        for t in reversed(range(T)):
            if mask[i, t]:
                running = rewards[i, t].item() + gamma * running
                returns[i, t] = running
    out = torch.zeros(B, T)
    size = group_size or B
    for rows in [list(range(g, g + size)) for g in range(0, B, size)]:
        vals = returns[rows][mask[rows].bool()]
        out[rows] = (returns[rows] - vals.mean()) / torch.sqrt(vals.var() + 1e-8) * mask[rows]
    return out


def reinforce_pp_ref(adv, mask):
    """PPO's symmetric clip (0.2) on per-token advantages (B, T), token mean."""
    return lambda logp, old, _, idx: token_mean(clipped(logp, old, adv[idx], 0.2, 0.2), mask[idx])


def rebn_advantages(token_rewards, mask, *, gamma=1.0, per_turn=True, normalise=True):
    """Each turn's discounted return G_k = sum_j gamma^(j-k) R_j (R_j: the rewards on turn j's tokens; a
    turn is a run of policy tokens between env replies), standardised over all turns of the batch.
    Mutated: every token gets its episode's return (``per_turn=False``), or G unstandardised."""
    B, T = mask.shape
    turns = []  # (row, columns, return)
    for i in range(B):
        cols = [c for c in range(T) if mask[i, c]]
        runs = [[cols[0]]]
        for c in cols[1:]:
            (runs[-1].append(c) if c == runs[-1][-1] + 1 else runs.append([c]))
        if not per_turn:
            runs = [cols]
        rewards = [token_rewards[i, run].sum().item() for run in runs]
        for k, run in enumerate(runs):
            turns.append((i, run, sum(gamma ** (j - k) * rewards[j] for j in range(k, len(runs)))))
    returns = torch.tensor([g for _, _, g in turns])
    z = (returns - returns.mean()) / (returns.std() + 1e-8) if normalise else returns
    adv = torch.zeros(B, T)
    for (i, run, _), value in zip(turns, z, strict=True):
        adv[i, run] = value
    return adv


def rebn_ref(adv, mask):
    """REINFORCE on per-token advantages (B, T): -A log pi summed per episode, mean over episodes."""
    return lambda logp, old, _, idx: seq_sum_mean(-adv[idx] * logp, mask[idx])


# ---- DAPO ---------------------------------------------------------------------------------------------
def test_dapo_update_is_the_papers_formula():
    algorithm, batch, initial, _ = make_setup("dapo", ppo_epochs=2, minibatch_size=3)
    adv, mask = group_normalised(batch.rewards + overlong_ref(batch)), batch.response_mask
    run = dict(epochs=2, minibatch=3)
    check(algorithm, batch, initial, dapo_ref(adv, mask), dapo_ref(adv, mask, high=0.2), **run)  # symmetric
    assert algorithm.reference is None  # beta = 0: no reference model at all


def test_dapo_overlong_penalty_falls_linearly_over_the_buffer():
    algorithm, batch, _, _ = make_setup("dapo")
    torch.testing.assert_close(algorithm.episode_rewards(batch), batch.rewards + overlong_ref(batch))
    # rows 0 and 4 used all 6 columns (-1), row 3 ended at column 6 too; the 2-4 token ones none
    penalty = algorithm.episode_rewards(batch) - batch.rewards
    assert penalty.tolist() == pytest.approx([-1.0, 0.0, 0.0, -1.0, -1.0, 0.0])


def test_dapo_with_truncated_masked_and_top_entropy_tokens():
    """--mask-truncated-completions drops rows 0 and 4 from loss and normaliser; --top-entropy-quantile
    zeroes the loss of the lower-entropy tokens (the normaliser still counts them, as TRL)."""
    algorithm, batch, initial, _ = make_setup(
        "dapo", mask_truncated_completions=True, top_entropy_quantile=0.4, overlong_buffer=0.0
    )
    adv, mask = group_normalised(batch.rewards), learned_mask(batch, drop_truncated=True)
    run = dict(epochs=1, minibatch=6)  # 13 tokens: the 0.6 quantile is not a tie
    check(algorithm, batch, initial, dapo_ref(adv, mask, top_entropy=0.4), dapo_ref(adv, mask), **run)


# ---- GSPO ---------------------------------------------------------------------------------------------
def test_gspo_update_is_the_papers_formula():
    algorithm, batch, initial, _ = make_setup("gspo", ppo_epochs=2, minibatch_size=3)
    adv, mask = group_normalised(batch.rewards), batch.response_mask
    run = dict(epochs=2, minibatch=3)
    check(algorithm, batch, initial, gspo_ref(adv, mask), gspo_ref(adv, mask, sequence_ratio=False), **run)


# ---- CISPO --------------------------------------------------------------------------------------------
def test_cispo_update_is_the_papers_formula():
    algorithm, batch, initial, _ = make_setup("cispo", ppo_epochs=2, minibatch_size=3)
    adv, mask = group_normalised(batch.rewards), batch.response_mask
    run = dict(epochs=2, minibatch=3)
    check(algorithm, batch, initial, cispo_ref(adv, mask), cispo_ref(adv, mask, stop_gradient=False), **run)


# ---- SAPO ---------------------------------------------------------------------------------------------
def test_sapo_update_is_the_papers_formula():
    algorithm, batch, initial, _ = make_setup("sapo", ppo_epochs=2, minibatch_size=3)
    adv, mask = group_normalised(batch.rewards), batch.response_mask
    run = dict(epochs=2, minibatch=3)
    check(algorithm, batch, initial, sapo_ref(adv, mask), sapo_ref(adv, mask, tau_neg=1.0), **run)  # one tau


# ---- REINFORCE++ --------------------------------------------------------------------------------------
def test_reinforce_pp_update_is_the_papers_formula():
    algorithm, batch, initial, reference = make_setup(
        "reinforce_pp", ppo_epochs=2, minibatch_size=3, kl_coef=BETA
    )
    mask = batch.response_mask
    with torch.no_grad():
        ref_logp = forward_with_entropy(reference.model, batch)[0]
    kl = batch.logprobs - ref_logp  # k1 of the sampler

    def reinforce_pp(group_size):
        adv = reinforce_pp_advantages(batch.token_rewards, mask, kl, beta=BETA, group_size=group_size)
        return reinforce_pp_ref(adv, mask)

    stats = check(algorithm, batch, initial, reinforce_pp(None), reinforce_pp(G), epochs=2, minibatch=3)
    assert stats["kl"] == pytest.approx((kl * mask).sum(1).mean().item(), abs=1e-6)


# ---- ReBN ---------------------------------------------------------------------------------------------
def test_rebn_update_is_the_papers_formula():
    algorithm, batch, initial, _ = make_setup("rebn", minibatch_size=3)  # minibatches accumulate: one step
    mask = batch.response_mask

    def rebn(per_turn):
        return rebn_ref(rebn_advantages(batch.token_rewards, mask, per_turn=per_turn), mask)

    check(algorithm, batch, initial, rebn(True), rebn(False), epochs=1, minibatch=6)


# ==== the realistic batch: groups of 3, a missing-EOS penalty, a zero-variance group ===================
def realistic(algo, **overrides):
    """The algorithm at its own defaults (kl_coef None: the algorithm's) on the realistic batch with
    its zero-variance group, the weights it starts from, and the case."""
    s = make_realistic_setup(algo, flat_group=True, **{"kl_coef": None, **overrides})
    assert (s.config.lr, s.config.seed) == (LR, SEED)  # run_reference's Adam and minibatch order
    return s, s.case.batch


REALISTIC_RUN = dict(epochs=2, minibatch=3)  # ppo_epochs=2, minibatch_size=3: six off-policy steps


def realistic_group_advantages(s):
    """Group-normalised advantages (B,) of the penalised episode rewards (written from the spec)."""
    return group_normalised(s.case.rewards, s.case.group_size)


DAPO_CASES = {
    "defaults": dict(),  # dynamic sampling with no extra rollout: the flat group stays, masked out
    "refilled": dict(max_extra_rollouts=1),  # ... one extra rollout replaces it
    "truncated-masked-top-entropy": dict(
        dynamic_sampling=False, mask_truncated_completions=True, top_entropy_quantile=0.5
    ),
}


@pytest.mark.parametrize("case", list(DAPO_CASES))
def test_dapo_on_the_realistic_batch(case):
    """Through ``collect`` as the trainer calls it: the zero-variance group is never learned from (not
    even in the token mean's normaliser), or is replaced by a fresh prompt's group; the overlong and
    missing-EOS penalties are in the rewards."""
    overrides = DAPO_CASES[case]
    s, batch = realistic("dapo", ppo_epochs=2, minibatch_size=3, **{"max_extra_rollouts": 0, **overrides})
    fresh = copy.deepcopy(batch)
    fresh.prompts = [f"fresh {p}" for p in batch.prompts]
    trained = s.algorithm.collect(lambda attempt: [batch, fresh][attempt])
    rewards = s.case.rewards + overlong_ref(batch)  # (9,) the flat group (rows 6-8) stays flat
    assert rewards[6:].tolist() == [0.5] * 3 and rewards[:6].view(2, 3).std(1).min() > 0.1
    if case == "refilled":  # groups 0 and 1, then the fresh batch's group 0
        rows = [0, 1, 2, 3, 4, 5, 0, 1, 2]
        assert trained.prompts[6:] == [f"fresh {p}" for p in batch.prompts[:3]]
        adv, mask = group_normalised(rewards[rows], 3), learned_mask(trained)
    elif case == "defaults":
        assert trained.prompts == batch.prompts and s.algorithm.unfilled_groups == 1
        adv, mask = group_normalised(rewards, 3), learned_mask(trained, drop_rows=[6, 7, 8])
    else:
        adv, mask = group_normalised(rewards, 3), learned_mask(trained, drop_truncated=True)
    top = overrides.get("top_entropy_quantile")
    check(
        s.algorithm,
        trained,
        s.model,
        dapo_ref(adv, mask, top_entropy=top),
        dapo_ref(adv, mask, high=0.2, top_entropy=top),  # the symmetric clip
        **REALISTIC_RUN,
    )


def test_gspo_on_the_realistic_batch():
    s, batch = realistic("gspo", ppo_epochs=2, minibatch_size=3)
    adv, mask = realistic_group_advantages(s), batch.response_mask
    correct, token_ratios = gspo_ref(adv, mask), gspo_ref(adv, mask, sequence_ratio=False)
    check(s.algorithm, batch, s.model, correct, token_ratios, **REALISTIC_RUN)


def test_cispo_on_the_realistic_batch():
    s, batch = realistic("cispo", ppo_epochs=2, minibatch_size=3)
    adv, mask = realistic_group_advantages(s), batch.response_mask
    correct, no_stop_gradient = cispo_ref(adv, mask), cispo_ref(adv, mask, stop_gradient=False)
    check(s.algorithm, batch, s.model, correct, no_stop_gradient, **REALISTIC_RUN)


def test_sapo_on_the_realistic_batch():
    s, batch = realistic("sapo", ppo_epochs=2, minibatch_size=3)
    adv, mask = realistic_group_advantages(s), batch.response_mask
    check(
        s.algorithm, batch, s.model, sapo_ref(adv, mask), sapo_ref(adv, mask, hard_clip=True), **REALISTIC_RUN
    )


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_reinforce_pp_on_the_realistic_batch(gamma):
    """Per-turn rewards where they were earned, the missing-EOS penalty on the last policy token, the
    sampler's k1 on every policy token, returns over the policy's tokens only, batch-whitened."""
    s, batch = realistic("reinforce_pp", ppo_epochs=2, minibatch_size=3, kl_coef=BETA, gamma=gamma)
    mask, kl = batch.response_mask, batch.logprobs - s.ref_logprobs
    rewards = s.case.penalised_turn_rewards

    def reinforce_pp(group_size):
        adv = reinforce_pp_advantages(rewards, mask, kl, beta=BETA, gamma=gamma, group_size=group_size)
        return reinforce_pp_ref(adv, mask)

    check(s.algorithm, batch, s.model, reinforce_pp(None), reinforce_pp(s.case.group_size), **REALISTIC_RUN)


REBN_CASES = {
    "defaults": dict(minibatch_size=3),  # gamma 1, no KL
    "discounted-with-kl": dict(gamma=0.9, kl_coef=BETA, minibatch_size=3),
}


@pytest.mark.parametrize("case", list(REBN_CASES))
def test_rebn_on_the_realistic_batch(case):
    """Per-turn discounted returns over the policy's turns (an env reply ends a turn), the missing-EOS
    penalty and the episode's summed KL in its last turn's reward, standardised over all turns; one
    step for the batch although it runs as minibatches. Mutations: episode returns, no standardisation."""
    overrides = REBN_CASES[case]
    gamma, beta = overrides.get("gamma", 1.0), overrides.get("kl_coef", 0.0)
    s, batch = realistic("rebn", **overrides)
    mask = batch.response_mask
    rewards = s.case.penalised_turn_rewards
    episode_kl = ((batch.logprobs - s.ref_logprobs) * mask).sum(1)
    for i, columns in enumerate(s.case.policy_columns):
        rewards[i, columns[-1]] -= beta * episode_kl[i]
    correct, episode_returns, unnormalised = (
        rebn_ref(rebn_advantages(rewards, mask, gamma=gamma, **mutant), mask)
        for mutant in (dict(), dict(per_turn=False), dict(normalise=False))
    )
    check(s.algorithm, batch, s.model, correct, episode_returns, unnormalised, epochs=1, minibatch=9)


# every test module's REALISTIC_REFERENCES: algorithm name -> the test that checks it on the realistic batch
REALISTIC_REFERENCES = {
    "dapo": test_dapo_on_the_realistic_batch,
    "gspo": test_gspo_on_the_realistic_batch,
    "cispo": test_cispo_on_the_realistic_batch,
    "sapo": test_sapo_on_the_realistic_batch,
    "reinforce_pp": test_reinforce_pp_on_the_realistic_batch,
    "rebn": test_rebn_on_the_realistic_batch,
}


# ---- dynamic sampling ---------------------------------------------------------------------------------
def test_dynamic_sampling_refills_zero_variance_groups_from_fresh_prompts():
    tok = build_tokenizer()
    first, fresh = hand_built_batch(tok), hand_built_batch(tok)
    fresh.prompts = [f"fresh {p}" for p in fresh.prompts]
    fresh.rewards = torch.tensor([0.0, 1.0, 0.5, 0.5, 0.3, 0.9])  # group 1 again without signal
    calls = []

    def rollout(attempt):
        calls.append(attempt)
        return [first, fresh][attempt]

    batch, extra, unfilled = refill_informative_groups(rollout, lambda b: b.rewards, G, max_extra=4)
    assert calls == [0, 1] and extra == 1 and unfilled == 0
    # groups 0 and 2 of the first batch, then the fresh batch's first informative group
    assert batch.prompts == [
        PROMPTS[0],
        PROMPTS[1],
        PROMPTS[4],
        PROMPTS[5],
        "fresh the movie was",
        "fresh food",
    ]
    assert all(r.std() > 0 for r in batch.rewards.view(-1, G))

    # with no extra rollout allowed the group without signal stays, last (the algorithm masks it out)
    batch, extra, unfilled = refill_informative_groups(lambda a: first, lambda b: b.rewards, G, max_extra=0)
    assert (extra, unfilled) == (0, 1)
    assert batch.prompts[-2:] == PROMPTS[2:4]


def test_dapo_never_learns_from_a_group_without_signal():
    """Through the algorithm: with no extra rollout allowed, the zero-variance group stays in the batch
    but the update is the formula over the four informative rows (the filler's tokens count nowhere,
    not even in the token-mean's normaliser)."""
    algorithm, batch, initial, _ = make_setup("dapo", overlong_buffer=0.0, max_extra_rollouts=0)
    batch.rewards = torch.tensor([0.7, -0.4, 0.2, 0.2, 1.3, -0.2])
    trained = algorithm.collect(lambda attempt: batch)
    assert algorithm.unfilled_groups == 1 and trained.prompts[-2:] == PROMPTS[2:4]
    got, stats = update_steps(algorithm, trained)
    adv = group_normalised(trained.rewards).unsqueeze(1)
    informative = trained.response_mask * torch.tensor([1.0, 1, 1, 1, 0, 0]).unsqueeze(1)

    def dapo(mask):
        return lambda logp, old, _, idx: token_mean(clipped(logp, old, adv[idx], 0.2, 0.28), mask[idx])

    assert steps_agree(
        got, run_reference(copy.deepcopy(initial), trained, dapo(informative), epochs=1, minibatch=6)
    )
    # the filler's tokens would change the update (its token count enters the normaliser)
    assert not steps_agree(
        got,
        run_reference(copy.deepcopy(initial), trained, dapo(trained.response_mask), epochs=1, minibatch=6),
    )
    assert stats["unfilled_groups"] == 1 and stats["extra_rollouts"] == 0


# ---- rollout-mismatch correction ------------------------------------------------------------------------
def test_bf16_rollout_weights_are_the_fp32_over_bf16_probability_ratio(tiny_model):
    """A real bf16 rollout: the correction's weights are exp(log pi_fp32 - log pi_bf16) of the sampled
    tokens, per token or their product per episode, truncated or masked at the cap."""
    from agents.training.rollout import collect_rollouts
    from agents.training.trainer import make_envs
    from tests.agents.helpers_trainers import tiny_env_args

    policy = LMPolicy.from_pretrained(tiny_model, device="cpu")
    envs = make_envs(
        TrainConfig(
            env="rlenv/TextGen-v0", model=tiny_model, steps=1, batch_size=8, env_args=tiny_env_args()
        ),
        tiny_model,
    )
    try:
        batch = collect_rollouts(policy, envs, seed=0, autocast_dtype=torch.bfloat16)
    finally:
        envs.close()
    assert batch.low_precision
    m = batch.response_mask
    with torch.no_grad():
        fp32 = policy.score_sequences(batch.input_ids, batch.attention_mask, batch.prompt_length).logprobs
    ratio = torch.exp(fp32 - batch.logprobs) * m
    assert ((ratio - 1).abs() * m).max() > 0  # bf16 really samples from a slightly different policy
    cap = float(torch.quantile(ratio[m.bool()], 0.5))  # half the tokens above it
    cap = max(cap, 1.0 + 1e-7)
    seq = torch.exp(((fp32 - batch.logprobs) * m).sum(1, keepdim=True)) * m
    cases = {
        ("tis", "token"): ratio.clamp(max=cap),
        ("mis", "token"): torch.where(ratio > cap, 0.0, ratio),
        ("tis", "sequence"): seq.clamp(max=cap),
        ("mis", "sequence"): torch.where(seq > cap, 0.0, seq),
    }
    for (mode, level), want in cases.items():
        got = rollout_importance_weights(fp32 - batch.logprobs, m, mode=mode, level=level, cap=cap)
        torch.testing.assert_close(got, want * m, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("algo", ["reinforce", "grpo", "cispo"])
@pytest.mark.parametrize("mode", ["tis", "mis"])
def test_the_correction_weights_each_token_loss_by_train_over_sample(algo, mode):
    """A sampler that put less mass on the batch's tokens than the fp32 policy (log pi_sample = log pi
    - d): the update equals the unweighted formula with each token's loss times min(e^d, cap) (tis) or
    e^d if <= cap else 0 (mis); the mismatch KL is logged."""
    algorithm, batch, initial, _ = make_setup(
        algo, kl_coef=0.0, rollout_precision="bf16", rollout_correction=mode, rollout_correction_cap=1.5
    )
    d = torch.linspace(-0.6, 0.8, 6 * T).view(6, T)
    batch.logprobs = (batch.logprobs - d) * batch.response_mask
    batch.low_precision = True
    w = torch.exp(d)
    w = w.clamp(max=1.5) if mode == "tis" else torch.where(w > 1.5, 0.0, w)
    m = batch.response_mask
    adv = (
        batch.rewards - batch.rewards.mean() if algo == "reinforce" else group_normalised(batch.rewards)
    ).unsqueeze(1)

    def loss(weights):
        def of(logp, old, _, idx):
            a, wt, mk = adv[idx], weights[idx], m[idx]
            if algo == "reinforce":
                return seq_sum_mean(-a * wt * logp, mk)
            if algo == "grpo":
                return token_mean(clipped(logp, old, a, 0.2, 0.2) * wt, mk)
            return token_mean(-torch.exp(logp - old).clamp(max=5.0).detach() * a * logp * wt, mk)

        return of

    got, stats = update_steps(algorithm, batch)
    assert steps_agree(got, run_reference(copy.deepcopy(initial), batch, loss(w), epochs=1, minibatch=6))
    assert not steps_agree(
        got, run_reference(copy.deepcopy(initial), batch, loss(torch.ones_like(w)), epochs=1, minibatch=6)
    )  # without the weights: a different update
    # KL(pi_sample || pi_train) by k3 with r = pi_train / pi_sample = e^d, summed per episode
    assert stats["rollout_mismatch_kl"] == pytest.approx(
        ((torch.exp(d) - 1 - d) * m).sum(1).mean().item(), rel=1e-4
    )


def test_the_correction_needs_bf16_rollouts_and_fp32_updates():
    with pytest.raises(Exception, match="--rollout-precision bf16"):
        TrainConfig(algo="grpo", steps=1, rollout_correction="tis")


# ---- every new algorithm trains end to end ----------------------------------------------------------------
MENU = ["dapo", "gspo", "cispo", "sapo", "reinforce_pp", "rebn"]


def two_updates(tmp_path, **fields):
    """Two updates of 8 episodes through ``train``; every logged loss finite."""
    from agents.training.trainer import train

    fields = dict(
        steps=2,
        batch_size=8,
        group_size=4,
        lr=1e-3,
        out=str(tmp_path / "run"),
        device="cpu",
        checkpoint_every=0,
        **fields,
    )
    result = train(TrainConfig(**fields))
    assert [r["step"] for r in result.metrics] == [1, 2]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in result.metrics)


@pytest.mark.parametrize("algo", MENU)
def test_the_menu_trains_on_a_padded_qwen2(tmp_path, algo):
    """A Qwen2 whose head has more rows than the tokenizer (padded vocabularies): rollouts, the update's
    logprobs and entropies (top-entropy tokens) all stay in the env's ids."""
    from tests.agents.helpers_trainers import tiny_env_args
    from tests.agents.test_padded_head_and_reference import padded_qwen2

    tok = build_tokenizer()
    model_dir = tmp_path / "qwen2-padded"
    padded_qwen2(len(tok)).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    extra = {"top_entropy_quantile": 0.5} if algo not in ("rebn", "sapo") else {}
    two_updates(
        tmp_path, algo=algo, env="rlenv/TextGen-v0", model=str(model_dir), env_args=tiny_env_args(), **extra
    )


@pytest.mark.parametrize("algo", MENU)
def test_the_menu_trains_on_a_multi_turn_id(tmp_path, algo):
    """GuessNumber-v0 on the embedded model: per-turn rewards, env replies between the guesses."""
    extra = {"max_extra_rollouts": 1} if algo == "dapo" else {}
    two_updates(tmp_path, algo=algo, env="rlenv/GuessNumber-v0", max_new_tokens=12, **extra)


@pytest.mark.parametrize("algo", MENU)
def test_the_menu_learns_the_tiny_sentiment_task(tiny_model, tmp_path, algo):
    """40 updates of 16 episodes on the random tiny GPT-2 (VADER reward): the trained model's reward,
    under the same seeded evaluation (64 episodes) as the untrained one, is well above it."""
    from agents.training.trainer import train
    from tests.agents.helpers_trainers import tiny_config
    from tests.agents.test_trainers import evaluation

    # the random tiny model never emits EOS, so DAPO's overlong penalty (-1 at the full 6-token budget)
    # would outweigh VADER's [-1, 1] and it would learn nothing else; the penalty is checked above
    extra = {"overlong_buffer": 0.0} if algo == "dapo" else {}
    config = tiny_config(
        tiny_model, tmp_path / "run", algo=algo, steps=40, batch_size=16, lr=3e-3, checkpoint_every=0, **extra
    )
    result = train(config)
    before = evaluation(tiny_model, config)["reward_mean"]
    after = evaluation(result.checkpoint, config)["reward_mean"]
    assert before < 0.2
    assert after > before + 0.4, (before, after)


def test_ppo_weights_its_whitened_advantages_by_the_correction():
    """PPO applies the weights to its whitened GAE advantages, per token (the value loss is untouched)."""
    tok = build_tokenizer()
    batch = hand_built_batch(tok)
    d = torch.linspace(-0.6, 0.8, 6 * T).view(6, T)
    targets = {}
    for mode in ("none", "mis"):
        policy = LMPolicy(build_model("gpt2", len(tok), seed=0, dropout=0.0), tok, value_head=True)
        config = TrainConfig(
            algo="ppo",
            steps=1,
            batch_size=6,
            kl_coef=0.0,
            rollout_precision="bf16",
            rollout_correction=mode,
            rollout_correction_cap=1.5,
            device="cpu",
        )
        algorithm = algorithm_class("ppo")(policy, config, None)
        with torch.no_grad():
            batch.logprobs = (forward_with_entropy(policy.model, batch)[0] - d) * batch.response_mask
        batch.low_precision = True
        targets[mode] = algorithm.targets(batch, batch.rewards)
    w = torch.exp(d)
    w = torch.where(w > 1.5, 0.0, w) * batch.response_mask
    torch.testing.assert_close(
        targets["mis"]["advantages"], targets["none"]["advantages"] * w, atol=1e-5, rtol=1e-4
    )
    torch.testing.assert_close(targets["mis"]["returns"], targets["none"]["returns"])
    assert targets["none"]["rollout_mismatch_kl"] == pytest.approx(targets["mis"]["rollout_mismatch_kl"])
