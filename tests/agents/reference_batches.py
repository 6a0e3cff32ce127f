"""Batches like the real ones, and the library-free pieces the reference updates are built from.

``realistic_batch`` builds what a multi-turn rollout with groups hands an algorithm: per-turn rewards
in ``token_rewards``, env replies in the context but out of ``response_mask`` (holes), rows cut at
the token budget without EOS (one of them inside an env reply, so its last column is not a policy
token), two prompts of different lengths (left padding) answered three times each, and update
rewards that include a non-zero missing-EOS penalty; with ``flat_group=True`` a third prompt's group
follows whose three rewards are equal (zero variance: no group signal, dynamic sampling's filler). Every
algorithm's reference test goes through
it (``tests/agents/test_algorithm_updates.py``); an algorithm added later registers its reference
in a module-level ``REALISTIC_REFERENCES`` dict of its own test module, which
``test_every_algorithm_has_a_reference_on_the_realistic_batch`` checks.

Nothing here imports ``agents.training.advantages`` or ``agents.training.losses``: the forward, GAE, whitening and
losses are written out again so that a bug in the library cannot hide in its own reference.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor

from agents.algorithms import algorithm_class
from agents.training.config import TrainConfig
from agents.training.distributed import Ranks
from agents.training.policy import LMPolicy
from agents.training.rollout import RolloutBatch
from agents.training.trainer import Trainer
from tests.agents.conftest import build_model, build_tokenizer

EOS = "<|endoftext|>"

# One row per episode: turns of (policy tokens, reward earned at the turn's last token, env reply).
# A row ends at EOS (terminated) or at the budget of T response columns (truncated; the env's reward
# model still scores it, on the last column the policy wrote). Rows i*G..i*G+G-1 answer prompt i.
REALISTIC_PROMPTS = ["the movie was", "a film"]
REALISTIC_GROUP_SIZE = 3
REALISTIC_T = 8
REALISTIC_ROWS: list[list[tuple[list[str], float, list[str]]]] = [
    # two turns, an env reply between them, ends on EOS
    [(["good", "."], 0.5, ["not", "good", "."]), (["great", EOS], 1.0, [])],
    # cut at the budget while the env is replying: its last column is an env token
    [(["bad", "."], 0.3, ["not", "good", "."]), (["bad", "."], -0.2, ["fine"])],
    # one env reply, then cut at the budget mid-turn
    [(["fine", "."], 0.2, ["fine", "."]), (["food", "was", "good", "and"], 0.4, [])],
    # single turn, short, EOS
    [(["clean", EOS], 0.9, [])],
    # a long env reply, then one policy token and the budget
    [(["dirty", "."], -0.5, ["the", "room", "was", "bad", "."]), (["hated"], 0.1, [])],
    # single turn, EOS, no env tokens at all
    [(["good", "!", EOS], 0.6, [])],
]
REALISTIC_PENALTY = 0.35  # --missing-eos-penalty
# ``flat_group=True`` appends a third group whose rewards are all 0.5 (dyadic: exactly equal in float),
# one of them earned over two turns around an env reply; every row ends on EOS within 6 of the T = 8
# columns, so DAPO's overlong penalty leaves them equal too
REALISTIC_FLAT_PROMPT = "i liked the hotel"
REALISTIC_FLAT_ROWS: list[list[tuple[list[str], float, list[str]]]] = [
    [(["good", "."], 0.25, ["fine", "."]), (["great", EOS], 0.25, [])],
    [(["fine", EOS], 0.5, [])],
    [(["clean", "room", "!", EOS], 0.5, [])],
]


@dataclass
class RealisticCase:
    batch: RolloutBatch
    rewards: Tensor  # (B,) what the trainer passes to update: env reward minus the missing-EOS penalty
    group_size: int
    penalty: float
    policy_columns: list[list[int]]  # per row, the response columns the policy wrote, in order
    env_columns: list[list[int]]  # per row, the response columns the env wrote
    rows: list[list[tuple[list[str], float, list[str]]]]  # the spec the batch was built from

    @property
    def turn_rewards(self) -> Tensor:
        """(B, T) the env's reward on the column of the action that earned it (written from the spec)."""
        out = torch.zeros(len(self.rows), REALISTIC_T)
        for i, turns in enumerate(self.rows):
            column = 0
            for policy, reward, reply in turns:
                column += len(policy)
                out[i, column - 1] += reward
                column += len(reply)
        return out

    @property
    def penalised_turn_rewards(self) -> Tensor:
        """(B, T) :attr:`turn_rewards` with the missing-EOS penalty on each truncated row's last policy
        column (where the trainer's adjustment of the episode reward lands)."""
        out = self.turn_rewards
        for i, columns in enumerate(self.policy_columns):
            if self.batch.truncated[i]:
                out[i, columns[-1]] -= self.penalty
        return out


def realistic_batch(tok, flat_group: bool = False) -> RealisticCase:
    """The batch described at the top of this module, as ``collect_rollouts`` would return it; its
    ``logprobs`` are zero until ``make_realistic_setup`` fills in the sampler's."""
    G, T = REALISTIC_GROUP_SIZE, REALISTIC_T
    spec = REALISTIC_ROWS + (REALISTIC_FLAT_ROWS if flat_group else [])
    B = len(spec)
    prompts = [p for p in REALISTIC_PROMPTS + [REALISTIC_FLAT_PROMPT] * flat_group for _ in range(G)]
    prompt_ids = [tok(p)["input_ids"] for p in prompts]
    P = max(len(p) for p in prompt_ids)
    ids = torch.full((B, P + T), tok.pad_token_id)
    attn = torch.zeros(B, P + T, dtype=torch.long)
    response_mask = torch.zeros(B, T)
    token_rewards = torch.zeros(B, T)
    truncated = torch.zeros(B, dtype=torch.bool)
    completions, policy_columns, env_columns = [], [], []
    for i, (prompt, turns) in enumerate(zip(prompt_ids, spec, strict=True)):
        ids[i, P - len(prompt) : P] = torch.tensor(prompt)
        attn[i, P - len(prompt) : P] = 1
        words, mine, theirs = [], [], []
        for policy, reward, reply in turns:
            mine += range(len(words), len(words) + len(policy))
            words += policy
            token_rewards[i, len(words) - 1] += reward
            theirs += range(len(words), len(words) + len(reply))
            words += reply
        assert len(words) <= T, f"row {i} is longer than the budget"
        ended_on_eos = words[-1] == EOS
        assert ended_on_eos or len(words) == T, f"row {i} must end on EOS or fill the budget"
        truncated[i] = not ended_on_eos
        ids[i, P : P + len(words)] = torch.tensor(tok.convert_tokens_to_ids(words))
        attn[i, P : P + len(words)] = 1
        response_mask[i, mine] = 1
        completions.append(" ".join(w for w in words if w != EOS))
        policy_columns.append(mine)
        env_columns.append(theirs)
    rewards = token_rewards.sum(1)
    batch = RolloutBatch(
        input_ids=ids,
        attention_mask=attn,
        response_mask=response_mask,
        actions=torch.where(response_mask.bool(), ids[:, P:], torch.full_like(ids[:, P:], tok.pad_token_id)),
        logprobs=torch.zeros(B, T),
        values=None,
        rewards=rewards,
        terminated=~truncated,
        truncated=truncated,
        prompts=prompts,
        completions=completions,
        prompt_length=P,
        token_rewards=token_rewards,
    )
    return RealisticCase(
        batch=batch,
        rewards=rewards - REALISTIC_PENALTY * truncated.float(),
        group_size=G,
        penalty=REALISTIC_PENALTY,
        policy_columns=policy_columns,
        env_columns=env_columns,
        rows=spec,
    )


# ---- a plain forward and the reference arithmetic -------------------------------------------------
def _response_distributions(model, batch: RolloutBatch):
    """(B, T, V) log-softmax of the distribution each response column's token was drawn from, and
    the model's output (for hidden states), from one full forward with no KV cache, no trimming."""
    P, attn = batch.prompt_length, batch.attention_mask
    positions = (attn.cumsum(-1) - 1).clamp_min(0)
    out = model(
        input_ids=batch.input_ids, attention_mask=attn, position_ids=positions, output_hidden_states=True
    )
    return torch.log_softmax(out.logits[:, P - 1 : -1].float(), dim=-1), out  # column c predicts c + 1


def plain_forward(model, batch: RolloutBatch, value_head=None) -> tuple[Tensor, Tensor | None]:
    """Logprobs (B, T) of every response column's token (env tokens too: the caller masks) and values
    (B, T) of the states before them."""
    logp_all, out = _response_distributions(model, batch)
    logp = logp_all.gather(-1, batch.input_ids[:, batch.prompt_length :, None]).squeeze(-1)
    values = None
    if value_head is not None:
        P = batch.prompt_length
        values = value_head(out.hidden_states[-1][:, P - 1 : -1]).squeeze(-1)
    return logp, values


def forward_with_entropy(model, batch: RolloutBatch) -> tuple[Tensor, Tensor]:
    """Logprobs (B, T) of every response column's token and the entropy (B, T) of the distribution it
    was drawn from (for --top-entropy-quantile)."""
    logp_all, _ = _response_distributions(model, batch)
    logp = logp_all.gather(-1, batch.input_ids[:, batch.prompt_length :, None]).squeeze(-1)
    return logp, -(logp_all.exp() * logp_all).sum(-1)


def token_mean(x: Tensor, mask: Tensor) -> Tensor:
    return (x * mask).sum() / mask.sum()


def seq_sum_mean(x: Tensor, mask: Tensor) -> Tensor:
    return (x * mask).sum(1).mean()


def naive_gae(rewards: list[float], values: list[float], gamma: float, lam: float) -> list[float]:
    """Advantages of one episode's policy steps, in order; the value after its last step is 0 (the
    return is complete). Env replies are not steps: the step after a turn's end is the next turn's."""
    n = len(rewards)
    adv, running = [0.0] * n, 0.0
    for t in reversed(range(n)):
        next_value = values[t + 1] if t + 1 < n else 0.0
        delta = rewards[t] + gamma * next_value - values[t]
        running = delta + gamma * lam * running
        adv[t] = running
    return adv


def whiten_masked(x: Tensor, mask: Tensor, keep_mean: bool = False) -> Tensor:
    """(x - mean) / std over the masked entries (unbiased variance), the mean added back if ``keep_mean``."""
    vals = x[mask.bool()]
    out = (x - vals.mean()) / torch.sqrt(vals.var(unbiased=True) + 1e-8)
    if keep_mean:
        out = out + vals.mean()
    return torch.where(mask.bool(), out, torch.zeros_like(x))


def clipped_pg(logp: Tensor, old: Tensor, adv: Tensor, eps: float) -> Tensor:
    ratio = torch.exp(logp - old)
    return torch.maximum(-adv * ratio, -adv * ratio.clamp(1 - eps, 1 + eps))


def grads_of(params) -> list[Tensor]:
    return [p.grad.detach().clone() for p in params]


# ---- harness ---------------------------------------------------------------------------------------------
def record_steps(algorithm, weights: list[list[Tensor]] | None = None) -> list[tuple[float, list[Tensor]]]:
    """Wrap the algorithm's backward/step to record each optimizer step's loss and gradient (and, into
    ``weights`` if given, the weights that gradient was taken at)."""
    steps = []
    real_backward, real_step = algorithm.backward, algorithm.step
    pending = {"loss": 0.0}

    def backward(loss):
        pending["loss"] += loss.item()
        real_backward(loss)

    def step():
        params = [p for g in algorithm.optimizer.param_groups for p in g["params"]]
        steps.append((pending["loss"], grads_of(params)))
        if weights is not None:
            weights.append([p.detach().clone() for p in params])
        pending["loss"] = 0.0
        return real_step()

    algorithm.backward, algorithm.step = backward, step
    return steps


@torch.no_grad()
def load_weights(params, values: list[Tensor]) -> None:
    """Set the reference's parameters to the library's at one step (same order), dropping their grads."""
    for p, v in zip(params, values, strict=True):
        p.copy_(v)
        p.grad = None


def assert_steps_equal(got, want) -> None:
    assert len(got) == len(want), f"{len(got)} optimizer steps, the reference takes {len(want)}"
    for k, ((loss_a, grads_a), (loss_b, grads_b)) in enumerate(zip(got, want, strict=True)):
        assert loss_a == pytest.approx(loss_b, abs=1e-6), f"step {k}: loss"
        for ga, gb in zip(grads_a, grads_b, strict=True):
            torch.testing.assert_close(
                ga, gb, atol=1e-5, rtol=1e-4, msg=lambda m, k=k: f"step {k}: gradient: {m}"
            )


def minibatch_orders(seed: int, B: int, size: int, epochs: int) -> list[Tensor]:
    """The index sets of the minibatches, epoch after epoch, from a generator seeded like the library's."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(epochs):
        order = torch.randperm(B, generator=generator)
        out += [order[i : i + size] for i in range(0, B, size)]
    return out


@dataclass
class Setup:
    algorithm: object
    case: RealisticCase
    model: torch.nn.Module  # a copy of the policy's initial weights, for the reference
    head: torch.nn.Module | None
    ref_logprobs: Tensor  # (B, T) of the frozen reference
    config: TrainConfig


def make_realistic_setup(
    algo: str, value_head: bool = False, ranks: Ranks | None = None, flat_group: bool = False, **overrides
) -> Setup:
    """An algorithm on a tiny random GPT-2 with a frozen reference, the realistic batch (its logprobs the
    policy's own, as after sampling; ``flat_group``: with the zero-variance group), and a copy of the
    initial weights for the reference update.

    With ``ranks`` (data parallel), the algorithm gets this rank's share of the config, as the trainer
    gives it, and the case keeps the global batch (``shard_rows`` picks the rank's rows)."""
    tok = build_tokenizer()
    policy = LMPolicy(build_model("gpt2", len(tok), seed=0, dropout=0.0), tok, value_head=value_head)
    reference = LMPolicy(build_model("gpt2", len(tok), seed=1, dropout=0.0), tok).reference()
    case = realistic_batch(tok, flat_group)
    fields = dict(
        algo=algo,
        steps=1,
        batch_size=case.batch.batch_size,
        group_size=case.group_size,
        lr=0.05,
        max_grad_norm=0.0,
        seed=3,
        kl_coef=0.1,
        missing_eos_penalty=case.penalty,
        device="cpu",
    )
    fields.update(overrides)
    config = TrainConfig(**fields)
    cls = algorithm_class(algo)
    local = Trainer._local_config(config, ranks) if ranks is not None else config
    # the reference is loaded only when the trainer would load it
    algorithm = cls(policy, local, reference if cls.needs_reference(config) else None, ranks=ranks)
    model = copy.deepcopy(policy.model)
    head = copy.deepcopy(policy.value_head) if value_head else None
    with torch.no_grad():
        case.batch.logprobs = plain_forward(policy.model, case.batch)[0] * case.batch.response_mask
        ref_logprobs = plain_forward(reference.model, case.batch)[0]
    return Setup(algorithm, case, model, head, ref_logprobs, config)


def shard_rows(batch: RolloutBatch, rows: slice) -> RolloutBatch:
    """The episodes ``rows`` of a batch, as the rank that rolled out only those would hold them."""
    return RolloutBatch(
        input_ids=batch.input_ids[rows],
        attention_mask=batch.attention_mask[rows],
        response_mask=batch.response_mask[rows],
        actions=batch.actions[rows],
        logprobs=batch.logprobs[rows],
        values=None if batch.values is None else batch.values[rows],
        rewards=batch.rewards[rows],
        terminated=batch.terminated[rows],
        truncated=batch.truncated[rows],
        prompts=batch.prompts[rows],
        completions=batch.completions[rows],
        prompt_length=batch.prompt_length,
        token_rewards=None if batch.token_rewards is None else batch.token_rewards[rows],
    )
