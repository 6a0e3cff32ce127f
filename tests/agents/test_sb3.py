"""The Stable-Baselines3 bridge (agents.bridges.sb3) and NLPO-style masking for MaskablePPO (agents.bridges.nlpo).

Every test uses a tiny random-init GPT-2 over the env's own vocabulary (rlenv/TokenReverse-v0's
7 symbols, or the word tokenizer of the agent tests), never the embedded model.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor
from transformers import GPT2Config, GPT2LMHeadModel

import rlenv  # registers the env ids
from agents.bridges.sb3 import LMActorCriticPolicy, SB3VectorEnv, last_token_forward, make_sb3_vec_env
from tests.agents.conftest import PROMPTS, count_good
from tests.margins import assert_learned, learning_seeds, standard_error

try:
    from agents.bridges.nlpo import (
        FrozenMaskLM,
        LMActionMask,
        MaskableLMActorCriticPolicy,
        SyncMaskLM,
        VecLMActionMask,
    )
except ImportError:  # sb3-contrib is the optional 'contrib' extra
    FrozenMaskLM = None
needs_contrib = pytest.mark.skipif(FrozenMaskLM is None, reason="needs sb3-contrib (pip install 'rlenv[contrib]')")

REVERSE = "rlenv/TokenReverse-v0"
MASKABLE_PPO_SEEDS = learning_seeds([0])  # CI's; the seeds and thread counts swept are in docs/testing.md
REVERSE_VOCAB = 7  # pad, eos, unk + 4 symbols
EOS = 1


def tiny_lm(vocab_size: int, *, n_layer: int = 1, n_embd: int = 32, seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(n_layer=n_layer, n_embd=n_embd, n_head=2, n_positions=64, vocab_size=vocab_size,
                        bos_token_id=EOS, eos_token_id=EOS, pad_token_id=0)
    return GPT2LMHeadModel(config)


def reverse_env(**kwargs) -> gym.Env:
    return gym.make(REVERSE, **kwargs)


def word_env(tokenizer) -> gym.Env:
    return gym.make("rlenv/TextGen-v0", tokenizer=tokenizer, prompts=PROMPTS, reward_model=count_good,
                    max_prompt_tokens=6, max_new_tokens=4)


def last_logits(model, obs) -> torch.Tensor:
    """(V,) next-token logits of a plain, unpadded forward over the observation's real tokens."""
    ids = torch.as_tensor(obs["input_ids"])[torch.as_tensor(obs["attention_mask"]).bool()]
    model.eval()  # the tiny LMs have dropout
    with torch.no_grad():
        return model(ids[None]).logits[0, -1]


# ---- policy construction -------------------------------------------------------------------
def test_policy_needs_a_model():
    with pytest.raises(ValueError, match="policy_kwargs=dict\\(model="):
        PPO(LMActorCriticPolicy, reverse_env())


def test_policy_rejects_network_layout_kwargs():
    with pytest.raises(ValueError, match="net_arch.*remove them"):
        PPO(LMActorCriticPolicy, reverse_env(), policy_kwargs=dict(model=tiny_lm(REVERSE_VOCAB), net_arch=[64]))


def test_policy_rejects_wrong_spaces():
    obs_space = reverse_env().observation_space
    schedule = lambda _: 1e-3  # noqa: E731
    with pytest.raises(ValueError, match="Discrete"):
        LMActorCriticPolicy(obs_space, spaces.Box(-1, 1, (2,)), schedule, model=tiny_lm(REVERSE_VOCAB))
    with pytest.raises(ValueError, match="input_ids.*attention_mask"):
        LMActorCriticPolicy(spaces.Box(0, 6, (7,)), spaces.Discrete(7), schedule, model=tiny_lm(REVERSE_VOCAB))


def test_policy_rejects_missing_path_and_small_vocab(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        PPO(LMActorCriticPolicy, reverse_env(), policy_kwargs=dict(model=str(tmp_path / "nope")))
    pickled = tmp_path / "pickled"  # a config plus pickle-based weights only: refused, never unpickled
    lm = tiny_lm(REVERSE_VOCAB)
    lm.config.save_pretrained(pickled)
    torch.save(lm.state_dict(), pickled / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match="no safetensors weights"):
        PPO(LMActorCriticPolicy, reverse_env(), policy_kwargs=dict(model=str(pickled)))
    with pytest.raises(ValueError, match="resize_token_embeddings"):
        PPO(LMActorCriticPolicy, reverse_env(), policy_kwargs=dict(model=tiny_lm(5)))


def test_policy_keeps_lm_dropout_off_unless_asked():
    model = PPO(LMActorCriticPolicy, reverse_env(), policy_kwargs=dict(model=tiny_lm(REVERSE_VOCAB)))
    model.policy.set_training_mode(True)
    assert not model.policy.lm.training and model.policy.value_net.training
    model = PPO(LMActorCriticPolicy, reverse_env(), policy_kwargs=dict(model=tiny_lm(REVERSE_VOCAB), lm_dropout=True))
    model.policy.set_training_mode(True)
    assert model.policy.lm.training


# ---- the forward -----------------------------------------------------------------------------
def test_last_token_forward_matches_plain_forward_on_padded_rows():
    model = tiny_lm(REVERSE_VOCAB, n_layer=2).eval()
    # rlenv's layout: prompt left-padded, generation right after it, pad after that (pad id 0)
    rows = [[3, 4, 5, 6, 1], [5, 3], [6, 6, 4], [4]]
    starts = [0, 2, 1, 3]  # left padding of each row
    L = 6
    ids = torch.zeros(len(rows), L, dtype=torch.long)
    mask = torch.zeros(len(rows), L, dtype=torch.int8)
    for i, (row, start) in enumerate(zip(rows, starts, strict=True)):
        ids[i, start : start + len(row)] = torch.tensor(row)
        mask[i, start : start + len(row)] = 1
    with torch.no_grad():
        logits, hidden = last_token_forward(model, ids.float(), mask.float())  # SB3 hands floats over
        for i, row in enumerate(rows):
            out = model(torch.tensor([row]), output_hidden_states=True)
            torch.testing.assert_close(logits[i], out.logits[0, -1], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(hidden[i], out.hidden_states[-1][0, -1], atol=1e-5, rtol=1e-5)
    assert logits.shape == (4, REVERSE_VOCAB) and hidden.shape == (4, 32)


def test_policy_distribution_is_the_lm_next_token_distribution():
    lm = tiny_lm(REVERSE_VOCAB)
    model = PPO(LMActorCriticPolicy, reverse_env(), policy_kwargs=dict(model=lm))
    obs, _ = reverse_env().reset(seed=0)
    obs_t, _ = model.policy.obs_to_tensor(obs)
    with torch.no_grad():
        probs = model.policy.get_distribution(obs_t).distribution.probs[0]
    torch.testing.assert_close(probs, torch.softmax(last_logits(lm, obs), -1), atol=1e-6, rtol=1e-5)


# ---- SB3VectorEnv ------------------------------------------------------------------------------
def test_sb3_vector_env_step_reset_contract():
    venv = make_sb3_vec_env(REVERSE, 3, monitor=False)  # length 3, max_new_tokens 4
    assert isinstance(venv, SB3VectorEnv) and venv.num_envs == 3
    venv.seed(5)
    obs = venv.reset()
    assert obs["input_ids"].shape == (3, 7) and obs["attention_mask"].sum(1).tolist() == [3, 3, 3]
    venv.seed(5)
    np.testing.assert_array_equal(venv.reset()["input_ids"], obs["input_ids"])  # seeded resets repeat
    # sub-env 0 ends on EOS at once (terminated); the others run to max_new_tokens (truncated)
    obs, rewards, dones, infos = venv.step(np.array([EOS, 3, 3]))
    assert dones.tolist() == [True, False, False] and rewards.dtype == np.float32
    assert infos[0]["TimeLimit.truncated"] is False and "completion" in infos[0]
    assert infos[0]["terminal_observation"]["attention_mask"].sum() == 4
    assert obs["attention_mask"][0].sum() == 3  # already the next episode's first observation
    for _ in range(3):
        obs, rewards, dones, infos = venv.step(np.array([3, 3, 3]))
    assert dones.tolist() == [False, True, True]
    assert infos[1]["TimeLimit.truncated"] is True and infos[1]["terminal_observation"]["attention_mask"].sum() == 7
    assert infos[1]["completion"] == "a a a a"
    assert rewards[0] == 0.0 and infos[0] == {}
    assert venv.get_attr("max_new_tokens") == [4, 4, 4]


def test_sb3_vector_env_needs_same_step_autoreset():
    native = gym.make_vec(REVERSE, num_envs=2, vectorization_mode="vector_entry_point", autoreset_mode="NextStep")
    with pytest.raises(ValueError, match="SameStep"):
        SB3VectorEnv(native)


# ---- SB3 algorithms ------------------------------------------------------------------------------
def test_ppo_save_load_roundtrip(tmp_path):
    lm_dir = tmp_path / "lm"
    tiny_lm(REVERSE_VOCAB).save_pretrained(lm_dir)
    model = PPO(LMActorCriticPolicy, make_sb3_vec_env(REVERSE, 4), policy_kwargs=dict(model=str(lm_dir)),
                n_steps=8, batch_size=16, n_epochs=1, learning_rate=1e-2, seed=0)
    model.learn(32)
    before_training = GPT2LMHeadModel.from_pretrained(lm_dir)
    trained = dict(model.policy.lm.named_parameters())
    assert any(not torch.equal(p, trained[n]) for n, p in before_training.named_parameters())
    model.save(tmp_path / "ppo.zip")
    loaded = PPO.load(tmp_path / "ppo.zip")
    assert isinstance(loaded.policy, LMActorCriticPolicy)
    obs = make_sb3_vec_env(REVERSE, 2, monitor=False).reset()
    for policy in (model.policy, loaded.policy):
        policy.set_training_mode(False)
    with torch.no_grad():
        a = model.policy.get_distribution(model.policy.obs_to_tensor(obs)[0]).distribution.logits
        b = loaded.policy.get_distribution(loaded.policy.obs_to_tensor(obs)[0]).distribution.logits
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(model.policy.predict_values(model.policy.obs_to_tensor(obs)[0]),
                                   loaded.policy.predict_values(loaded.policy.obs_to_tensor(obs)[0]))


def test_a2c_trains_through_the_lm_policy():
    model = A2C(LMActorCriticPolicy, make_sb3_vec_env(REVERSE, 4), policy_kwargs=dict(model=tiny_lm(REVERSE_VOCAB)),
                n_steps=4, seed=0)
    start = {n: p.detach().clone() for n, p in model.policy.named_parameters()}
    model.learn(64)
    after = dict(model.policy.named_parameters())
    assert all(torch.isfinite(p).all() for p in after.values())
    assert not torch.equal(start["features_extractor.model.transformer.h.0.attn.c_attn.weight"],
                           after["features_extractor.model.transformer.h.0.attn.c_attn.weight"])
    assert not torch.equal(start["value_net.weight"], after["value_net.weight"])


def mean_episode_reward(policy, *, length: int, episodes: int = 128, masked_env=None) -> float:
    """Mean final reward of ``episodes`` seeded episodes sampled from ``policy`` (same seeds every call)."""
    return float(np.mean(episode_rewards(policy, length=length, episodes=episodes, masked_env=masked_env)))


def episode_rewards(policy, *, length: int, episodes: int = 128, masked_env=None) -> list[float]:
    """Final rewards of ``episodes`` seeded episodes sampled from ``policy`` (same seeds every call)."""
    venv = masked_env or make_sb3_vec_env(REVERSE, 16, monitor=False, length=length)
    venv.seed(123)
    torch.manual_seed(123)
    obs, rewards = venv.reset(), []
    while len(rewards) < episodes:
        if masked_env is not None:
            actions, _ = policy.predict(obs, action_masks=venv.action_masks())
        else:
            actions, _ = policy.predict(obs)
        obs, reward, dones, _ = venv.step(actions)
        rewards.extend(reward[dones].tolist())
    return rewards[:episodes]


@pytest.mark.slow
def test_stock_ppo_learns_token_reverse():
    """Seeded: reversing 2 of 4 symbols goes from ~chance to near perfect; the untrained policy
    under the same evaluation seeds is the baseline."""
    venv = make_sb3_vec_env(REVERSE, 8, length=2)
    model = PPO(LMActorCriticPolicy, venv, policy_kwargs=dict(model=tiny_lm(REVERSE_VOCAB, n_layer=2, n_embd=64)),
                n_steps=32, batch_size=64, n_epochs=4, learning_rate=3e-3, ent_coef=0.0, seed=0)
    before = mean_episode_reward(model.policy, length=2)
    model.learn(8192)
    after = mean_episode_reward(model.policy, length=2)
    assert before < 0.3
    assert after > before + 0.4, (before, after)


# ---- NLPO masks ------------------------------------------------------------------------------------


def nucleus(logits: torch.Tensor, p: float) -> set[int]:
    """The smallest set of most likely tokens whose probability reaches ``p``, by hand."""
    probs = torch.softmax(logits.double(), -1)
    kept, mass = set(), 0.0
    for token in torch.argsort(probs, descending=True).tolist():
        kept.add(token)
        mass += float(probs[token])
        if mass >= p:
            return kept
    return kept


@needs_contrib
def test_mask_is_the_frozen_lm_top_k_set(tokenizer):
    lm = tiny_lm(len(tokenizer))
    env = LMActionMask(word_env(tokenizer), lm, top_k=5)
    obs, _ = env.reset(seed=0)
    for step in range(3):
        mask = env.action_masks()
        expected = set(torch.topk(last_logits(lm, obs), 5).indices.tolist())
        assert mask.dtype == bool and mask.shape == (len(tokenizer),)
        assert set(np.flatnonzero(mask).tolist()) == expected, step
        obs, *_ = env.step(int(next(t for t in np.flatnonzero(mask) if t != tokenizer.eos_token_id)))


@needs_contrib
def test_mask_is_the_frozen_lm_nucleus(tokenizer):
    lm = tiny_lm(len(tokenizer), seed=1)
    obs, _ = word_env(tokenizer).reset(seed=0)
    logits = last_logits(lm, obs)
    for p in (0.3, 0.6, 0.9):
        env = LMActionMask(word_env(tokenizer), lm, top_p=p)
        env.reset(seed=0)
        assert set(np.flatnonzero(env.action_masks()).tolist()) == nucleus(logits, p), p
    # top-k first, then the nucleus of what top-k left (renormalised), as generate() does
    env = LMActionMask(word_env(tokenizer), lm, top_k=4, top_p=0.6)
    env.reset(seed=0)
    top4 = torch.topk(logits, 4).indices
    expected = {int(top4[i]) for i in nucleus(logits[top4], 0.6)}
    assert set(np.flatnonzero(env.action_masks()).tolist()) == expected
    # a vanishing p still leaves the most likely token
    env = LMActionMask(word_env(tokenizer), lm, top_p=1e-9)
    env.reset(seed=0)
    assert np.flatnonzero(env.action_masks()).tolist() == [int(logits.argmax())]


@needs_contrib
def test_mask_lm_is_a_separate_frozen_copy():
    lm = tiny_lm(REVERSE_VOCAB)
    mask_lm = FrozenMaskLM(lm, top_k=2, device="cpu")
    assert mask_lm.model is not lm and not mask_lm.model.training
    assert not any(p.requires_grad for p in mask_lm.model.parameters())
    assert all(p.requires_grad for p in lm.parameters())  # the caller's model is left trainable
    env = LMActionMask(reverse_env(), mask_lm)
    env.reset(seed=0)
    before = env.action_masks()
    with torch.no_grad():
        for p in lm.parameters():
            p.normal_()
    env.reset(seed=0)
    np.testing.assert_array_equal(env.action_masks(), before)
    mask_lm.load_weights_from(lm)  # NLPO's refresh: now the mask follows the changed weights
    obs, _ = env.reset(seed=0)
    expected = set(torch.topk(last_logits(lm, obs), 2).indices.tolist())
    assert set(np.flatnonzero(env.action_masks()).tolist()) == expected


@needs_contrib
@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(top_k=0), "top_k must be an int >= 1"),
    (dict(top_k=-3), "top_k must be an int >= 1"),
    (dict(top_k=2.5), "top_k must be an int >= 1"),
    (dict(top_p=0.0), "top_p must be a float in \\(0, 1\\]"),
    (dict(top_p=1.5), "top_p must be a float in \\(0, 1\\]"),
    (dict(), "masks nothing; set top_k"),
    (dict(top_p=1.0), "masks nothing; set top_k"),
])
def test_mask_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FrozenMaskLM(tiny_lm(REVERSE_VOCAB), **kwargs)


@needs_contrib
def test_mask_wrapper_errors():
    mask_lm = FrozenMaskLM(tiny_lm(REVERSE_VOCAB), top_k=2)
    with pytest.raises(ValueError, match="set them there"):
        LMActionMask(reverse_env(), mask_lm, top_k=3)
    with pytest.raises(ValueError, match="resize_token_embeddings"):
        LMActionMask(reverse_env(), tiny_lm(5), top_k=2)
    with pytest.raises(RuntimeError, match="reset"):
        LMActionMask(reverse_env(), mask_lm).action_masks()
    with pytest.raises(ValueError, match="architecture"):
        mask_lm.load_weights_from(tiny_lm(REVERSE_VOCAB, n_layer=2))
    with pytest.raises(ValueError, match="every must be an int >= 1"):
        SyncMaskLM(mask_lm, every=0)


@needs_contrib
def test_sb3_contrib_reads_masks_from_both_wrappers():
    from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported

    mask_lm = FrozenMaskLM(tiny_lm(REVERSE_VOCAB), top_k=3, device="cpu")
    dummy = DummyVecEnv([lambda: LMActionMask(reverse_env(), mask_lm) for _ in range(3)])
    batched = VecMonitor(VecLMActionMask(make_sb3_vec_env(REVERSE, 3, monitor=False), mask_lm))
    for venv in (dummy, batched):
        venv.seed(7)
        obs = venv.reset()
        assert is_masking_supported(venv)
        masks = get_action_masks(venv)
        assert masks.shape == (3, REVERSE_VOCAB) and (masks.sum(1) == 3).all()
        # each row is the mask LM's answer for that sub-env's own observation
        for i in range(3):
            np.testing.assert_array_equal(masks[i], mask_lm(obs["input_ids"][i : i + 1],
                                                            obs["attention_mask"][i : i + 1], REVERSE_VOCAB)[0])


class RecordMaskViolations(BaseCallback):
    """Counts actions MaskablePPO took outside the mask it was given at that step."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = self.violations = 0

    def _on_step(self) -> bool:
        actions, masks = self.locals["actions"], self.locals["action_masks"]
        self.steps += len(actions)
        self.violations += int((~masks[np.arange(len(actions)), actions]).sum())
        return True


@needs_contrib
@pytest.mark.parametrize("batched", [False, True])
def test_maskable_ppo_acts_only_inside_the_mask(batched):
    from sb3_contrib import MaskablePPO

    lm = tiny_lm(REVERSE_VOCAB)
    initial = [p.detach().clone() for p in lm.parameters()]
    mask_lm = FrozenMaskLM(lm, top_k=2, device="cpu")
    if batched:
        env = VecLMActionMask(make_sb3_vec_env(REVERSE, 4), mask_lm)
    else:
        env = DummyVecEnv([lambda: LMActionMask(reverse_env(), mask_lm) for _ in range(4)])
    model = MaskablePPO(MaskableLMActorCriticPolicy, env, policy_kwargs=dict(model=lm), n_steps=8, batch_size=16,
                        n_epochs=2, learning_rate=1e-2, seed=0)
    record, sync = RecordMaskViolations(), SyncMaskLM(mask_lm, every=2)
    model.learn(4 * 8 * 4, callback=[record, sync])  # 4 rollouts: refreshed before the 3rd
    assert record.steps == 128 and record.violations == 0
    assert sync.syncs == 1 and mask_lm.version == 1
    # the refresh copied the policy as it was after update 2: no longer the start, not yet the end
    masked = list(mask_lm.model.parameters())
    assert any(not torch.equal(p, q) for p, q in zip(initial, masked, strict=True))
    assert any(not torch.equal(p, q) for p, q in zip(lm.parameters(), masked, strict=True))


@needs_contrib
def test_sync_needs_the_env_own_mask_lm():
    from sb3_contrib import MaskablePPO

    lm = tiny_lm(REVERSE_VOCAB)
    env = VecLMActionMask(make_sb3_vec_env(REVERSE, 2), lm, top_k=2)
    model = MaskablePPO(MaskableLMActorCriticPolicy, env, policy_kwargs=dict(model=lm), n_steps=4, batch_size=8)
    with pytest.raises(ValueError, match="same instance"):
        model.learn(8, callback=SyncMaskLM(FrozenMaskLM(lm, top_k=2), every=1))


@needs_contrib
@pytest.mark.slow
@pytest.mark.parametrize("seed", MASKABLE_PPO_SEEDS)
def test_maskable_ppo_learns_with_a_tracking_mask(seed):
    """NLPO's loop on the reversal toy: masks from a frozen copy of the policy (its 5 most likely of
    7 tokens), refreshed every update; the baseline is the untrained policy under its initial masks
    and the same seeds. The gain must exceed 3 standard errors of the 128-episode evaluation (about
    0.14), not a fixed bar: a fixed +0.4 passed on one CPU's float rounding and failed on another's
    (0.22 -> 0.50). docs/testing.md lists the seeds and thread counts it was run with."""
    from sb3_contrib import MaskablePPO

    lm = tiny_lm(REVERSE_VOCAB, n_layer=2, n_embd=64, seed=seed)
    mask_lm = FrozenMaskLM(lm, top_k=5, device="cpu")
    env = VecLMActionMask(make_sb3_vec_env(REVERSE, 8, length=2), mask_lm)
    model = MaskablePPO(MaskableLMActorCriticPolicy, env, policy_kwargs=dict(model=lm), n_steps=32, batch_size=64,
                        n_epochs=4, learning_rate=3e-3, seed=seed)
    eval_env = VecLMActionMask(make_sb3_vec_env(REVERSE, 16, monitor=False, length=2), mask_lm)
    before = episode_rewards(model.policy, length=2, masked_env=eval_env)
    model.learn(8192, callback=SyncMaskLM(mask_lm, every=1))
    after = episode_rewards(model.policy, length=2, masked_env=eval_env)
    assert_learned(float(np.mean(before)), float(np.mean(after)), standard_error(before), standard_error(after),
                   f"MaskablePPO seed {seed}")


def test_stock_ppo_runs_on_a_multi_turn_id_with_the_lm_policy():
    """A multi-turn id through the SB3 bridge: the env's replies arrive inside the observation and the
    LM policy reads the next-token logits after them; episodes with replies are completed."""
    venv = make_sb3_vec_env("rlenv/GuessNumber-v0", 4, max_new_tokens=12)
    model = PPO(LMActorCriticPolicy, venv, policy_kwargs=dict(model=rlenv.DEFAULT_MODEL), n_steps=16, batch_size=32,
                n_epochs=1, seed=0)
    model.learn(64)
    assert len(model.ep_info_buffer) > 0
    obs = venv.reset()
    assert "policy_mask" in obs and obs["policy_mask"].dtype == np.int8


# ---- the episode work savers (issue 24) ------------------------------------------------------------
def stored_transitions(venv, steps: int, seed: int = 0):
    """(steps * N) observations of random-action episodes, as SB3 stores them (float tensors)."""
    rng = np.random.default_rng(seed)
    venv.seed(seed)
    obs, ids, masks = venv.reset(), [], []
    for _ in range(steps):
        ids.append(obs["input_ids"].copy())
        masks.append(obs["attention_mask"].copy())
        obs, _, _, _ = venv.step(rng.integers(0, venv.action_space.n, venv.num_envs))
    return torch.as_tensor(np.concatenate(ids)).float(), torch.as_tensor(np.concatenate(masks)).float()


def test_prefix_grouped_forward_equals_one_forward_per_observation(tokenizer):
    from agents.bridges.sb3_forward import prefix_grouped_forward

    model = tiny_lm(len(tokenizer), n_layer=2).eval()
    venv = make_sb3_vec_env("rlenv/TextGen-v0", 3, monitor=False, tokenizer=tokenizer, prompts=PROMPTS,
                            reward_model=count_good, max_prompt_tokens=6, max_new_tokens=4)
    ids, mask = stored_transitions(venv, 9)  # several episodes per sub-env, autoresets included
    order = torch.randperm(ids.shape[0], generator=torch.Generator().manual_seed(0))
    ids, mask = ids[order], mask[order]  # as a shuffled minibatch
    forwards = []
    model.register_forward_pre_hook(lambda m, a, kw: forwards.append(kw["input_ids"].shape[0]), with_kwargs=True)
    with torch.no_grad():
        logits, hidden = prefix_grouped_forward(model, ids, mask)
        ref_logits, ref_hidden = last_token_forward(model, ids, mask)
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(hidden, ref_hidden, atol=1e-5, rtol=1e-5)
    assert forwards[0] < ids.shape[0] / 2  # one row per episode, not per transition


def test_acting_cache_gives_the_plain_forward_across_autoresets(tokenizer):
    from agents.bridges.sb3_forward import ActingCache

    model = tiny_lm(len(tokenizer), n_layer=2).eval()
    venv = make_sb3_vec_env("rlenv/TextGen-v0", 4, monitor=False, tokenizer=tokenizer, prompts=PROMPTS,
                            reward_model=count_good, max_prompt_tokens=6, max_new_tokens=5)
    cache, rng = ActingCache(), np.random.default_rng(1)
    venv.seed(1)
    obs = venv.reset()
    fed, resets, restarted = [], 0, True
    model.register_forward_pre_hook(lambda m, a, kw: fed.append(kw["input_ids"].shape), with_kwargs=True)
    for _ in range(14):
        ids, mask = torch.as_tensor(obs["input_ids"]).float(), torch.as_tensor(obs["attention_mask"]).float()
        with torch.no_grad():
            ref_logits, ref_hidden = last_token_forward(model, ids, mask)
            fed.clear()
            logits, hidden = cache(model, ids, mask)
            if not restarted:  # no new episode: one forward of one token per sub-env
                assert fed == [(4, 1)]
            again, _ = cache(model, ids, mask)  # SB3's bootstrap asks again for the same observations
        torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(hidden, ref_hidden, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(again, logits)
        obs, _, dones, _ = venv.step(rng.integers(3, venv.action_space.n, venv.num_envs))
        resets, restarted = resets + int(dones.sum()), bool(dones.any())
    assert resets >= 4  # episodes ended and restarted while the cache carried on
    assert cache.cache_mask.shape[1] <= 2 * (6 + 5) + 2  # dead columns were squeezed out


def test_acting_cache_forgets_the_old_weights_when_sb3_trains():
    model = PPO(LMActorCriticPolicy, make_sb3_vec_env(REVERSE, 2, monitor=False),
                policy_kwargs=dict(model=tiny_lm(REVERSE_VOCAB)), n_steps=4, batch_size=8, n_epochs=1)
    policy, venv = model.policy, make_sb3_vec_env(REVERSE, 2, monitor=False)
    obs_t = policy.obs_to_tensor(venv.reset())[0]
    policy.set_training_mode(False)
    with torch.no_grad():
        policy.predict_values(obs_t)  # fills the cache
        policy.set_training_mode(True)
        for p in policy.lm.parameters():
            p.mul_(1.5)
        policy.set_training_mode(False)
        after = policy.get_distribution(obs_t).distribution.logits
        plain, _ = last_token_forward(policy.lm, obs_t["input_ids"], obs_t["attention_mask"])
    torch.testing.assert_close(after, torch.log_softmax(plain, -1), atol=1e-5, rtol=1e-5)


def test_evaluate_actions_with_episode_savers_equals_the_plain_path():
    """SB3's log-probs, values and entropies, and their gradients, on a whole-episode minibatch."""
    from agents.bridges.sb3 import EpisodeRolloutBuffer

    venv = make_sb3_vec_env(REVERSE, 2, monitor=False)
    model = PPO(LMActorCriticPolicy, venv, policy_kwargs=dict(model=tiny_lm(REVERSE_VOCAB, n_layer=2)),
                n_steps=16, batch_size=16, n_epochs=1, rollout_buffer_class=EpisodeRolloutBuffer, seed=0)
    model.learn(32)  # fills the buffer through the acting cache
    policy = model.policy
    batch = next(model.rollout_buffer.get(16))
    actions = batch.actions.long().flatten()  # as PPO.train hands them over
    results = []
    for savers in (False, True):
        policy.features_extractor.episode_work_savers = savers
        policy.zero_grad()
        values, log_prob, entropy = policy.evaluate_actions(batch.observations, actions)
        (log_prob.sum() + values.sum() + entropy.sum()).backward()
        grads = {n: p.grad.clone() for n, p in policy.named_parameters() if p.grad is not None}
        results.append((values.detach(), log_prob.detach(), entropy.detach(), grads))
    for a, b in zip(results[0][:3], results[1][:3], strict=True):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    for name, g in results[0][3].items():
        torch.testing.assert_close(results[1][3][name], g, atol=1e-5, rtol=1e-4, msg=name)


def test_episode_buffer_minibatches_hold_whole_episodes_once():
    from agents.bridges.sb3 import EpisodeRolloutBuffer

    model = PPO(LMActorCriticPolicy, make_sb3_vec_env(REVERSE, 3, monitor=False),
                policy_kwargs=dict(model=tiny_lm(REVERSE_VOCAB)), n_steps=10, batch_size=5, n_epochs=1,
                rollout_buffer_class=EpisodeRolloutBuffer, seed=0)
    model.learn(30)
    buffer = model.rollout_buffer
    episodes = buffer.episode_slices()
    assert sorted(np.concatenate(episodes).tolist()) == list(range(30))
    seen = []
    for batch in buffer.get(5):
        seen.extend(map(tuple, batch.observations["input_ids"].long().tolist()))
    assert len(seen) == 30  # every transition once per epoch
    obs = buffer.observations["input_ids"]  # (30, L) flattened sub-env major
    order = [tuple(row) for row in obs.astype(np.int64).tolist()]
    positions = [order.index(t) for t in seen]
    runs = [positions[i + 1] - positions[i] for i in range(len(positions) - 1)]
    assert sum(r == 1 for r in runs) >= 30 - 2 * len(episodes)  # consecutive within an episode


@pytest.mark.parametrize("arch", ["gpt2", "llama", "qwen2", "neox"])
def test_episode_savers_equal_the_plain_forward_for_every_architecture(arch):
    """Rotary and learned positions alike: episodes grow a token per call, one restarts mid-way."""
    from agents.bridges.sb3_forward import ActingCache, prefix_grouped_forward
    from tests.agents.conftest import build_model

    torch.manual_seed(0)
    model = build_model(arch, 40).eval()
    ids, lengths, cache = torch.randint(3, 40, (4, 12)), [3, 5, 2, 4], ActingCache()
    seen_ids, seen_masks = [], []
    for step in range(8):
        mask = (torch.arange(12)[None, :] < torch.tensor(lengths)[:, None]).float()
        with torch.no_grad():
            logits, hidden = cache(model, ids.float(), mask)
            ref_logits, ref_hidden = last_token_forward(model, ids.float(), mask)
        torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(hidden, ref_hidden, atol=1e-5, rtol=1e-5)
        seen_ids.append(ids.clone())
        seen_masks.append(mask)
        lengths = [n + 1 for n in lengths]
        if step == 3:  # sub-env 1 starts a new episode
            ids[1], lengths[1] = torch.randint(3, 40, (12,)), 2
    all_ids, all_masks = torch.cat(seen_ids).float(), torch.cat(seen_masks)
    with torch.no_grad():
        grouped = prefix_grouped_forward(model, all_ids, all_masks)
        plain = last_token_forward(model, all_ids, all_masks)
    torch.testing.assert_close(grouped[0], plain[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grouped[1], plain[1], atol=1e-5, rtol=1e-5)
