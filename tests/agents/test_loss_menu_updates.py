"""The 2026 loss menu (dapo, gspo, cispo, sapo, reinforce_pp, rebn): each whole update against the paper's
formula written out here, plus a mutation check each.

A hand-built batch of six episodes in groups of two — two rows cut off at the token budget, a group
whose rewards are equal (zero variance), two multi-turn rows whose env tokens sit between the policy's
turns (``response_mask`` holes) and carry per-turn rewards — goes through ``Algorithm.update`` on a tiny
random GPT-2. The same update is computed from scratch below (plain forward without KV cache, own
advantages, surrogates and aggregation, none of the library's helpers) on a copy of the weights with
the same Adam: every optimizer step's loss must agree to 1e-6 and its gradient to 1e-5. The mutation
check runs the nearest neighbour's formula (DAPO with a symmetric clip, GSPO with token ratios, CISPO
without the stop-gradient, SAPO with one temperature, REINFORCE++ normalised per group, ReBN with
episode instead of turn returns) on the same batch: it must NOT agree with the algorithm, so the
comparison can tell the two apart. (Each mutation was also made in the library by hand, and the
matching test failed.)
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
def forward(model, batch):
    """Logprobs (B, T) of the response tokens and the entropy (B, T) of each step's distribution."""
    attn = batch.attention_mask
    positions = (attn.cumsum(-1) - 1).clamp_min(0)
    logits = model(input_ids=batch.input_ids, attention_mask=attn, position_ids=positions).logits
    logp_all = torch.log_softmax(logits[:, P - 1 : -1].float(), dim=-1)  # column c predicts token c + 1
    logp = logp_all.gather(-1, batch.input_ids[:, P:, None]).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy


def token_mean(x, mask):
    return (x * mask).sum() / mask.sum()


def sequence_mean(x, mask):
    return ((x * mask).sum(1) / mask.sum(1).clamp(min=1)).mean()


def sequence_sum(x, mask):
    return (x * mask).sum(1).mean()


def group_normalised(rewards):
    r = rewards.view(-1, G)
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
        old, _ = forward(model, batch)
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
            logp, entropy = forward(model, batch)
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
        batch.logprobs = forward(policy.model, batch)[0] * batch.response_mask  # the sampler's
    return algorithm, batch, initial, reference


def update_steps(algorithm, batch):
    """Run the algorithm's update on ``batch``, recording each optimizer step's loss and gradient (and,
    in ``algorithm.weights_before_step``, the weights that step's forward used)."""
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


def check(algorithm, batch, initial, correct: Callable, mutant: Callable, **run) -> dict:
    """The algorithm agrees with ``correct`` and the nearest neighbour ``mutant`` does not."""
    got, stats = update_steps(algorithm, batch)
    run["weights"] = algorithm.weights_before_step
    want = run_reference(copy.deepcopy(initial), batch, correct, **run)
    for (loss_a, grads_a), (loss_b, grads_b) in zip(got, want, strict=True):
        assert loss_a == pytest.approx(loss_b, abs=1e-6)
        for a, b in zip(grads_a, grads_b, strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert len(got) == len(want)
    assert not steps_agree(got, run_reference(copy.deepcopy(initial), batch, mutant, **run)), (
        "the nearest neighbour's formula gives the same update: this batch cannot tell them apart"
    )
    return stats


def clipped(logp, old, adv, low, high):
    ratio = torch.exp(logp - old)
    return torch.maximum(-adv * ratio, -adv * ratio.clamp(1 - low, 1 + high))


def mask_of(batch, idx, *, drop_truncated=False):
    m = batch.response_mask[idx]
    return m * (~batch.truncated[idx]).float().unsqueeze(1) if drop_truncated else m


# ---- DAPO ---------------------------------------------------------------------------------------------
def dapo_rewards(batch):
    """DAPO's soft overlong punishment over the last 20% of the budget (L = 1.2 of T = 6 columns)."""
    used = torch.tensor([max(c for c in range(T) if batch.response_mask[i, c]) + 1 for i in range(6)]).float()
    cache = 0.2 * T
    return batch.rewards + torch.where(used > T - cache, (T - cache - used) / cache, torch.zeros(6))


def test_dapo_update_is_the_papers_formula():
    algorithm, batch, initial, _ = make_setup("dapo", ppo_epochs=2, minibatch_size=3)
    adv = group_normalised(dapo_rewards(batch)).unsqueeze(1)

    def dapo(high):
        return lambda logp, old, _, idx: token_mean(
            clipped(logp, old, adv[idx], 0.2, high), mask_of(batch, idx)
        )

    check(algorithm, batch, initial, dapo(0.28), dapo(0.2), epochs=2, minibatch=3)  # mutant: symmetric clip
    assert algorithm.reference is None  # beta = 0: no reference model at all


def test_dapo_overlong_penalty_falls_linearly_over_the_buffer():
    algorithm, batch, _, _ = make_setup("dapo")
    torch.testing.assert_close(algorithm.episode_rewards(batch), dapo_rewards(batch))
    # rows 0 and 4 used all 6 columns (-1), row 3 ended at column 6 too; the 2-4 token ones none
    penalty = algorithm.episode_rewards(batch) - batch.rewards
    assert penalty.tolist() == pytest.approx([-1.0, 0.0, 0.0, -1.0, -1.0, 0.0])


def test_dapo_with_truncated_masked_and_top_entropy_tokens():
    """--mask-truncated-completions drops rows 0 and 4 from loss and normaliser; --top-entropy-quantile
    zeroes the loss of the lower-entropy tokens (the normaliser still counts them, as TRL)."""
    algorithm, batch, initial, _ = make_setup(
        "dapo", mask_truncated_completions=True, top_entropy_quantile=0.4, overlong_buffer=0.0
    )
    adv = group_normalised(batch.rewards).unsqueeze(1)

    def loss_of(quantile_mask: bool):
        def loss(logp, old, entropy, idx):
            m = mask_of(batch, idx, drop_truncated=True)
            per_token = clipped(logp, old, adv[idx], 0.2, 0.28)
            if quantile_mask:
                threshold = torch.quantile(entropy.detach()[m.bool()], 0.6)  # 13 tokens: not a tie
                per_token = per_token * (entropy.detach() >= threshold).float()
            return token_mean(per_token, m)

        return loss

    check(algorithm, batch, initial, loss_of(True), loss_of(False), epochs=1, minibatch=6)


# ---- GSPO ---------------------------------------------------------------------------------------------
def test_gspo_update_is_the_papers_formula():
    algorithm, batch, initial, _ = make_setup("gspo", ppo_epochs=2, minibatch_size=3)
    adv = group_normalised(batch.rewards)

    def gspo(logp, old, _, idx):
        m = mask_of(batch, idx)
        s = torch.exp(((logp - old) * m).sum(1) / m.sum(1))  # (b,) the length-normalised sequence ratio
        a = adv[idx]
        return torch.maximum(-a * s, -a * s.clamp(1 - 3e-4, 1 + 4e-4)).mean()

    def token_ratios(logp, old, _, idx):  # mutant: GRPO's token-level ratio with GSPO's clip range
        return sequence_mean(clipped(logp, old, adv[idx].unsqueeze(1), 3e-4, 4e-4), mask_of(batch, idx))

    check(algorithm, batch, initial, gspo, token_ratios, epochs=2, minibatch=3)


# ---- CISPO --------------------------------------------------------------------------------------------
def test_cispo_update_is_the_papers_formula():
    algorithm, batch, initial, _ = make_setup("cispo", ppo_epochs=2, minibatch_size=3)
    adv = group_normalised(batch.rewards).unsqueeze(1)

    def cispo(stop_gradient: bool):
        def loss(logp, old, _, idx):
            weight = torch.exp(logp - old).clamp(max=5.0)  # the cap 1 + eps_high, eps_high = 4
            weight = weight.detach() if stop_gradient else weight
            return token_mean(-weight * adv[idx] * logp, mask_of(batch, idx))

        return loss

    check(algorithm, batch, initial, cispo(True), cispo(False), epochs=2, minibatch=3)


# ---- SAPO ---------------------------------------------------------------------------------------------
def test_sapo_update_is_the_papers_formula():
    algorithm, batch, initial, _ = make_setup("sapo", ppo_epochs=2, minibatch_size=3)
    adv = group_normalised(batch.rewards).unsqueeze(1)

    def sapo(tau_neg):
        def loss(logp, old, _, idx):
            a = adv[idx].expand(-1, T)
            tau = torch.where(a > 0, torch.tensor(1.0), torch.tensor(tau_neg))
            gate = torch.sigmoid(tau * (torch.exp(logp - old) - 1)) * 4 / tau
            return sequence_mean(-gate * a, mask_of(batch, idx))

        return loss

    check(algorithm, batch, initial, sapo(1.05), sapo(1.0), epochs=2, minibatch=3)  # mutant: one temperature


# ---- REINFORCE++ --------------------------------------------------------------------------------------
def reinforce_pp_advantages(batch, ref_logp, *, per_group: bool):
    """k1 KL in every token's reward, the env's rewards on their columns, returns-to-go over the
    policy's tokens (gamma = 1), whitened over the batch's tokens (or, mutated, each group's)."""
    m = batch.response_mask
    rewards = batch.token_rewards - BETA * (batch.logprobs - ref_logp) * m
    returns = torch.zeros(6, T)
    for i in range(6):
        running = 0.0
        for t in reversed(range(T)):
            if m[i, t]:
                running += rewards[i, t].item()
                returns[i, t] = running
    out = torch.zeros(6, T)
    blocks = [list(range(g * G, g * G + G)) for g in range(3)] if per_group else [list(range(6))]
    for rows in blocks:
        vals = returns[rows][m[rows].bool()]
        out[rows] = (returns[rows] - vals.mean()) / torch.sqrt(vals.var() + 1e-8) * m[rows]
    return out


def test_reinforce_pp_update_is_the_papers_formula():
    algorithm, batch, initial, reference = make_setup(
        "reinforce_pp", ppo_epochs=2, minibatch_size=3, kl_coef=BETA
    )
    with torch.no_grad():
        ref_logp = forward(reference.model, batch)[0]

    def reinforce_pp(per_group):
        adv = reinforce_pp_advantages(batch, ref_logp, per_group=per_group)
        return lambda logp, old, _, idx: token_mean(
            clipped(logp, old, adv[idx], 0.2, 0.2), mask_of(batch, idx)
        )

    stats = check(algorithm, batch, initial, reinforce_pp(False), reinforce_pp(True), epochs=2, minibatch=3)
    assert stats["kl"] == pytest.approx(
        ((batch.logprobs - ref_logp) * batch.response_mask).sum(1).mean().item(), abs=1e-6
    )


# ---- ReBN ---------------------------------------------------------------------------------------------
def rebn_advantages(batch, *, per_turn: bool):
    """Each turn's return (gamma = 1: the rewards from that turn on), standardised over all turns of
    the batch; mutated: every token gets its episode's return, standardised over episodes."""
    m = batch.response_mask
    turns = []  # (row, columns, return)
    for i in range(6):
        cols = [c for c in range(T) if m[i, c]]
        runs = [[cols[0]]]
        for c in cols[1:]:
            (runs[-1].append(c) if c == runs[-1][-1] + 1 else runs.append([c]))
        if not per_turn:
            runs = [cols]
        rewards = [batch.token_rewards[i, run].sum().item() for run in runs]
        for k, run in enumerate(runs):
            turns.append((i, run, sum(rewards[k:])))
    returns = torch.tensor([g for _, _, g in turns])
    z = (returns - returns.mean()) / (returns.std() + 1e-8)
    adv = torch.zeros(6, T)
    for (i, run, _), value in zip(turns, z, strict=True):
        adv[i, run] = value
    return adv


def test_rebn_update_is_the_papers_formula():
    algorithm, batch, initial, _ = make_setup(
        "rebn", minibatch_size=3
    )  # minibatches accumulate into one step

    def rebn(per_turn):
        adv = rebn_advantages(batch, per_turn=per_turn)
        # one on-policy step: the two minibatches' weighted shares add up to the full batch's loss
        return lambda logp, old, _, idx: sequence_sum(-adv[idx] * logp, batch.response_mask[idx])

    check(algorithm, batch, initial, rebn(True), rebn(False), epochs=1, minibatch=6)


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
                return sequence_sum(-a * wt * logp, mk)
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
            batch.logprobs = (forward(policy.model, batch)[0] - d) * batch.response_mask
        batch.low_precision = True
        targets[mode] = algorithm.targets(batch, batch.rewards)
    w = torch.exp(d)
    w = torch.where(w > 1.5, 0.0, w) * batch.response_mask
    torch.testing.assert_close(
        targets["mis"]["advantages"], targets["none"]["advantages"] * w, atol=1e-5, rtol=1e-4
    )
    torch.testing.assert_close(targets["mis"]["returns"], targets["none"]["returns"])
    assert targets["none"]["rollout_mismatch_kl"] == pytest.approx(targets["mis"]["rollout_mismatch_kl"])
