"""``LMPolicy``: a causal language model as a token-level policy, with an optional value head.

The policy acts on batches with a KV cache (see :mod:`agents.training.rollout`) and scores whole sequences
for the update in one forward pass. Its log-probabilities are always those of the distribution it
samples from — temperature-scaled and top-k/top-p filtered — so the importance ratios of the update
compare like with like. The frozen reference (:meth:`LMPolicy.reference`) is scored at the same
temperature but never filtered: the KL is to the reference's own distribution.

The action space is the tokenizer's ids, ``[0, len(tokenizer))``, the env's ``Discrete(V)``. Many
models pad their output head past the tokenizer (Qwen2.5: 151,936 rows for 151,665 tokens); the
extra logits are cut off before any softmax, so no id outside the env's space is ever sampled and
every logprob is normalised over the actions that exist.

Dropout is off in both phases. :meth:`LMPolicy.train` records the mode on the wrapper only and keeps
every submodule in eval mode; eval mode changes dropout (and norm statistics) but not autograd, so
gradients still flow through :meth:`LMPolicy.score_sequences`. With dropout on, the logprobs of
the rollout and of the first update epoch would differ for the same weights, and PPO's ratio would
start away from 1. (Gradient checkpointing, which HF gates on ``module.training``, is therefore not
used.)
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DynamicCache,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.cache_utils import DynamicLayer

from agents.errors import ConfigError
from agents.training.losses import entropy_from_logprobs
from agents.training.scoring import distinct_prompts, length_buckets
from reward_models.hf_progress import transformers_bars_hidden
from rlenv.tokenizer import check_tokenizer, check_tokenizer_files

logger = logging.getLogger(__name__)

SCORING_OVERHEAD = 0.1
"""the cost of one more forward in the scoring pass, as a share of the single padded forward's work
(:func:`agents.training.scoring.length_buckets`): a split must save more than this"""

VALUE_HEAD_FILE = "value_head.safetensors"
LORA_DIR = (
    "lora_adapter"  # a subfolder: an adapter_config.json at the top would make HF load it as a hub adapter
)


@dataclass(frozen=True)
class SamplingConfig:
    """How the policy turns logits into a sampling distribution (``top_k=0``/``top_p=1`` disable)."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(
                f"temperature must be > 0, got {self.temperature} (for greedy use a small value)"
            )
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 disables it), got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1] (1 disables it), got {self.top_p}")

    @property
    def is_plain(self) -> bool:
        """True when sampling is from the model's own softmax, unchanged."""
        return self.temperature == 1.0 and self.top_k == 0 and self.top_p == 1.0


@dataclass
class SequenceScores:
    """What :meth:`LMPolicy.score_sequences` returns; every field is (B, T) over the response columns."""

    logprobs: Tensor
    values: Tensor | None = None
    entropy: Tensor | None = None


def sampling_logprobs(logits: Tensor, sampling: SamplingConfig, keep: Tensor | None = None) -> Tensor:
    """Log-probabilities (…, V) of the distribution sampled from, given raw logits (…, V).

    Temperature first, then top-k, then top-p on what top-k left (the order ``generate`` uses).
    Filtered tokens get -inf. ``keep`` (…,) names a token per row that stays in the support: when
    re-scoring taken actions, float noise between the cached and the full forward could otherwise
    push a token that sat exactly on the top-k/top-p boundary out, giving an infinite log-ratio.
    """
    logits = logits.float()
    if sampling.is_plain:
        return torch.log_softmax(logits, dim=-1)
    if sampling.temperature != 1.0:
        logits = logits / sampling.temperature
    vocab = logits.shape[-1]
    remove = torch.zeros_like(logits, dtype=torch.bool)
    if 0 < sampling.top_k < vocab:
        kth = torch.topk(logits, sampling.top_k, dim=-1).values[..., -1:]
        remove |= logits < kth
    if sampling.top_p < 1.0:
        sorted_logits, order = logits.masked_fill(remove, float("-inf")).sort(dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs  # the top token always stays (mass_before = 0)
        remove |= torch.zeros_like(remove).scatter(-1, order, mass_before >= sampling.top_p)
    if keep is not None:
        remove.scatter_(-1, keep.unsqueeze(-1), False)
    return torch.log_softmax(logits.masked_fill(remove, float("-inf")), dim=-1)


def sample_categorical(logprobs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One exact draw per row from log-probabilities (B, V) by inverting the CDF; returns (B, 1) long.

    ``torch.multinomial`` (what ``generate`` uses) costs ~10x more on CPU for a (32, 8k) batch;
    a float64 cumsum + binary search is exact for our purposes and never lands on a zero-probability
    (filtered) token: the uniform is scaled just below the total mass, and a zero-width interval
    cannot contain it.
    """
    cdf = logprobs.double().exp().cumsum(-1)  # (B, V)
    total = cdf[:, -1:] * (1.0 - 1e-12)
    u = torch.rand(total.shape, dtype=torch.float64, device=cdf.device, generator=generator) * total
    return torch.searchsorted(cdf, u, right=True).clamp_max(cdf.shape[-1] - 1)  # NaN rows stay in range


def position_ids_from_mask(attention_mask: Tensor) -> Tensor:
    """(B, L) position ids that count only real tokens, so left padding does not shift positions.

    Models that derive positions from ``cache_position`` (Llama, Qwen2, GPT-NeoX …) would otherwise
    give a left-padded prompt different positions than the same prompt unpadded.
    """
    return (attention_mask.long().cumsum(-1) - 1).clamp_min(0)


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> cuda when available, else cpu; anything else as given, once checked to exist."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    target = torch.device(device)
    if target.type == "cuda" and not torch.cuda.is_available():
        why = (
            "no CUDA device is visible"
            if torch.backends.cuda.is_built()
            else f"this torch build ({torch.__version__}) is CPU-only"
        )
        raise ConfigError(
            f"--device {device}: {why}; pass --device auto (uses a GPU when there is one) or --device cpu"
        )
    return target


class LMPolicy(nn.Module):
    """A causal LM policy over token ids, optionally with a scalar value head on the shared trunk.

    Args:
        model: any ``AutoModelForCausalLM`` (GPT-2, Llama, Qwen2, GPT-NeoX …).
        tokenizer: its tokenizer; must define EOS and pad (see :func:`rlenv.tokenizer.check_tokenizer`).
        value_head: ``True`` adds ``Linear(hidden, 1)`` on the last (post-norm) hidden state; an
            ``nn.Module`` is used as given.
        lora_rank: > 0 wraps the model with peft LoRA adapters on every linear layer (lm_head
            excluded); only adapters and the value head train, and :meth:`reference` is the same
            weights with adapters disabled.
        sampling: temperature / top-k / top-p; the logprobs used for learning follow it.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        value_head: bool | nn.Module = False,
        lora_rank: int = 0,
        lora_alpha: float | None = None,
        sampling: SamplingConfig = SamplingConfig(),  # noqa: B008 - frozen, so a shared default is safe
    ) -> None:
        super().__init__()
        check_tokenizer(tokenizer)
        if lora_rank < 0:
            raise ValueError(f"lora_rank must be >= 0 (0 = full fine-tuning), got {lora_rank}")
        fuse_tanh_gelu(model)
        if lora_rank > 0:
            model = _add_lora(model, lora_rank, lora_alpha)
        self.model: Any = model  # a PreTrainedModel, or a peft PeftModel wrapping one (LoRA)
        self.tokenizer = tokenizer
        self.sampling = sampling
        self.num_actions = len(tokenizer)
        head_rows = model.get_output_embeddings().weight.shape[0]
        if head_rows < self.num_actions:
            raise ValueError(
                f"the tokenizer has {self.num_actions} tokens but the model's output head only {head_rows} rows; "
                "resize the model's embeddings (model.resize_token_embeddings(len(tokenizer))) or use its own tokenizer"
            )
        self._cache_kwarg = _cache_kwarg(model)
        if value_head is True:
            hidden = model.get_output_embeddings().weight.shape[1]
            head = nn.Linear(hidden, 1)
            nn.init.normal_(head.weight, std=1.0 / (hidden + 1) ** 0.5)
            nn.init.zeros_(head.bias)
            value_head = head.to(self.device)
        self.value_head: nn.Module | None = value_head if isinstance(value_head, nn.Module) else None
        self.autocast_dtype: torch.dtype | None = None
        """e.g. torch.bfloat16: run the model's forward passes under autocast; weights and logprobs stay fp32"""
        self.shared_scoring = True
        """score_sequences runs a group's prompt once and skips padding (False: one padded forward)"""
        self._adapters_off = False  # True only for the LoRA reference view
        self._frozen = False
        super().train(False)
        self.model.eval()

    # ---- construction ----------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        value_head: bool = False,
        lora_rank: int = 0,
        device: str | torch.device = "auto",
        sampling: SamplingConfig = SamplingConfig(),  # noqa: B008
        trust_remote_code: bool = False,
        dtype: torch.dtype | None = None,
    ) -> LMPolicy:
        """Load model + tokenizer (+ value head, + LoRA adapter) from a local directory.

        Only safetensors weights are read; ``trust_remote_code`` is passed through, never implied.
        A ``value_head.safetensors`` beside the model is loaded when ``value_head=True``; a saved
        ``lora_adapter/`` is loaded (trainable) whatever ``lora_rank`` says.
        """
        path = Path(path)
        check_model_dir(path)
        check_tokenizer_files(path)
        tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
        check_tokenizer(tokenizer)
        with transformers_bars_hidden():
            model: Any = AutoModelForCausalLM.from_pretrained(  # a PeftModel once an adapter loads
                str(path), use_safetensors=True, trust_remote_code=trust_remote_code, dtype=dtype
            )
            adapter = path / LORA_DIR
            if (adapter / "adapter_config.json").exists():
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, str(adapter), is_trainable=True)
                lora_rank = 0
        target = resolve_device(device)
        policy = cls(
            model.to(target), tokenizer, value_head=value_head, lora_rank=lora_rank, sampling=sampling
        )
        head_file = path / VALUE_HEAD_FILE
        if value_head and head_file.exists():
            assert policy.value_head is not None  # value_head=True
            policy.value_head.load_state_dict(load_file(str(head_file), device=str(target)))
        elif value_head:
            logger.info("no %s in %s; the value head starts from a fresh init", VALUE_HEAD_FILE, path)
        return policy.to(target)

    def save_pretrained(self, path: str | Path) -> None:
        """Write the HF model + tokenizer, the value head and any LoRA adapter (all safetensors).

        With LoRA the base weights are saved clean (loadable by ``AutoModelForCausalLM``) and the
        adapter goes to ``lora_adapter/``, so the frozen reference survives a save/load round trip.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with transformers_bars_hidden():
            if self.is_lora:
                base = self.model.get_base_model()
                clean = {
                    k.replace(".base_layer.", "."): v
                    for k, v in base.state_dict().items()
                    if "lora_" not in k
                }
                base.save_pretrained(str(path), state_dict=clean)
                self.model.save_pretrained(str(path / LORA_DIR))
            else:
                self.model.save_pretrained(str(path))
        self.tokenizer.save_pretrained(str(path))
        if self.value_head is not None:
            state = {k: v.detach().contiguous().cpu() for k, v in self.value_head.state_dict().items()}
            save_file(state, str(path / VALUE_HEAD_FILE))

    def reference(self) -> LMPolicy:
        """A frozen policy for KL: eval, no grad, no value head, the policy's temperature but no
        top-k/top-p filter (the KL is to the reference's own distribution, not to its filtered head).

        Without LoRA this is one deep copy of the model. With LoRA it is a view on the *same* model
        with adapters disabled — no second copy; the view does not register the shared model as a
        submodule, so ``reference().parameters()`` is empty and freezing it cannot freeze the policy.
        """
        ref = LMPolicy.__new__(LMPolicy)
        nn.Module.__init__(ref)
        if self.is_lora:
            object.__setattr__(ref, "model", self.model)
            ref._adapters_off = True
        else:
            ref.model = copy.deepcopy(self.model).requires_grad_(False).eval()
            ref._adapters_off = False
        ref.tokenizer = self.tokenizer
        ref.num_actions = self.num_actions
        ref.sampling = SamplingConfig(temperature=self.sampling.temperature)
        ref._cache_kwarg = self._cache_kwarg
        ref.autocast_dtype = self.autocast_dtype
        ref.shared_scoring = self.shared_scoring
        ref.value_head = None
        ref._frozen = True
        nn.Module.train(ref, False)
        return ref

    # ---- modes and properties --------------------------------------------------------------
    def train(self, mode: bool = True) -> LMPolicy:
        """Record the mode but keep every submodule in eval mode: dropout stays off (module docstring)."""
        self.training = mode and not self._frozen
        for module in self.children():
            module.eval()
        return self

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def is_lora(self) -> bool:
        return hasattr(self.model, "peft_config")

    @property
    def pad_token_id(self) -> int:
        return int(self.tokenizer.pad_token_id)

    @property
    def eos_token_id(self) -> int:
        return int(self.tokenizer.eos_token_id)

    @contextlib.contextmanager
    def autocast(self, dtype: torch.dtype | None) -> Iterator[None]:
        """Run the forward passes inside the block with :attr:`autocast_dtype` = ``dtype`` (None: fp32)."""
        saved, self.autocast_dtype = self.autocast_dtype, dtype
        try:
            yield
        finally:
            self.autocast_dtype = saved

    @contextlib.contextmanager
    def casts_held(self) -> Iterator[None]:
        """Keep one autocast region open across every forward in the block, so each weight is cast
        to :attr:`autocast_dtype` once for the block instead of once per forward (autocast caches
        the casts of parameters until its outermost region exits). For a rollout's many one-token
        forwards that is one cast of every weight instead of one per token (at 27M parameters, ~110 MB
        of fp32 read per cast). Code in the block that is not the policy's forward (an env's reward
        model) must run inside :meth:`outside_autocast`. Nothing happens without an autocast dtype."""
        if self.autocast_dtype is None:
            yield
            return
        with torch.autocast(self.device.type, dtype=self.autocast_dtype):
            yield

    def outside_autocast(self) -> contextlib.AbstractContextManager[Any]:
        """A region inside :meth:`casts_held` that runs at full precision (autocast off; the held
        casts survive it)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, enabled=False)

    # ---- forward passes --------------------------------------------------------------------
    @contextlib.contextmanager
    def _model_context(self) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            if self._adapters_off:
                stack.enter_context(self.model.disable_adapter())
            if self._frozen:
                stack.enter_context(torch.no_grad())
            if self.autocast_dtype is not None:
                stack.enter_context(torch.autocast(self.device.type, dtype=self.autocast_dtype))
                if self.device.type == "cpu" and torch.is_grad_enabled():
                    # torch's CPU flash-attention backward in bf16 is ~4x slower than the plain
                    # (math) kernels' forward + backward on rollout-sized rows (B 32, 8 heads, 37
                    # tokens: 41 vs 12 ms); without gradients flash stays, being the faster forward
                    stack.enter_context(sdpa_kernel([SDPBackend.MATH]))
            yield

    def forward_tokens(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        position_ids: Tensor,
        *,
        cache: Any = None,
        logits_to_keep: int = 0,
        with_values: bool = False,
    ) -> tuple[Tensor, Tensor | None, Any]:
        """One model call: logits (B, K, V), values (B, K) | None and the updated KV cache.

        K = ``logits_to_keep`` last positions (0 = all); V = :attr:`num_actions` (a padded head's
        extra rows are cut off). ``attention_mask`` covers the cache plus
        the new tokens, (B, cached + S); ``input_ids``/``position_ids`` are the new tokens, (B, S).
        """
        if with_values and self.value_head is None:
            raise ValueError("with_values=True needs a value head; build the policy with value_head=True")
        cache_kwarg = self._cache_kwarg
        with self._model_context():
            out = self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                use_cache=cache is not None,
                logits_to_keep=logits_to_keep,
                output_hidden_states=with_values,
                **{cache_kwarg: cache},
            )
        values = None
        if with_values:
            hidden = out.hidden_states[-1]  # (B, S, H), post final norm for HF causal LMs
            if logits_to_keep:
                hidden = hidden[:, -logits_to_keep:]
            assert self.value_head is not None, "with_values needs a policy built with value_head=True"
            values = self.value_head(hidden.to(self.value_head.weight.dtype)).squeeze(-1).float()
        logits = out.logits
        if logits.shape[-1] != self.num_actions:
            logits = logits[..., : self.num_actions]  # (B, K, V)
        return logits, values, getattr(out, cache_kwarg)

    def score_sequences(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        prompt_length: int,
        *,
        with_values: bool = False,
        with_entropy: bool = False,
    ) -> SequenceScores:
        """Score the response columns [P, P+T) of (B, P+T) sequences, one forward per sequence at most.

        Returns logprobs (B, T) of the tokens under the sampling distribution, values (B, T) — the
        value of the state *before* each response token, i.e. read at column P-1+t — and entropy
        (B, T) of the sampling distribution (detached: a statistic). Columns past a sequence's end hold pad and are
        meaningless; mask them with the rollout's ``response_mask``.

        With :attr:`shared_scoring` (the default) a prompt shared by several rows (GRPO/RLOO's
        groups) runs once and rows are bucketed by length, so no forward runs on padding or on a
        repeated prompt (:mod:`agents.training.scoring`); otherwise every row runs in one padded forward. Both
        give the same outputs and gradients to float rounding.
        """
        P = int(prompt_length)
        T = input_ids.shape[1] - P
        if T < 1 or P < 1:
            raise ValueError(f"need 1 <= prompt_length < sequence length, got {P} and {input_ids.shape[1]}")
        # the shared path runs several forwards (a prompt pass, length buckets): one cast of each weight
        with self.casts_held():
            if self.shared_scoring and self._full_attention_cache:
                return self._score_shared(input_ids, attention_mask, P, with_values, with_entropy)
            return self._score_padded(input_ids, attention_mask, P, with_values, with_entropy)

    def _score_padded(
        self, input_ids: Tensor, attention_mask: Tensor, P: int, with_values: bool, with_entropy: bool
    ) -> SequenceScores:
        """Every row in ONE forward, padded to the batch's longest prompt and response."""
        T = input_ids.shape[1] - P
        # Only the columns some row uses are run through the model: leading prompt columns that are
        # padding in every row, and trailing response columns after every episode has ended.
        # The outputs are padded back to T columns (zeros, masked out by the response mask anyway).
        real = attention_mask.bool()
        first = int(real[:, :P].any(0).long().argmax())  # first prompt column any row uses
        used_cols = real[:, P:].any(0).nonzero()
        used = int(used_cols[-1]) + 1 if used_cols.numel() else 1
        ids, mask = input_ids[:, first : P + used], attention_mask[:, first : P + used]
        logits, values, _ = self.forward_tokens(
            ids, mask, position_ids_from_mask(mask), logits_to_keep=used + 1, with_values=with_values
        )
        tokens = ids[:, P - first :]  # (B, used)
        # the logits at column c predict token c+1: columns [P-1, P+used-1) score the response
        scores = self._score_columns(
            logits[:, :-1], values[:, :-1] if values is not None else None, tokens, with_entropy
        )
        return _pad_scores(scores, T)

    def _score_shared(
        self, input_ids: Tensor, attention_mask: Tensor, P: int, with_values: bool, with_entropy: bool
    ) -> SequenceScores:
        """Each distinct prompt once, then the responses in length buckets on its cache (agents.training.scoring)."""
        T = input_ids.shape[1] - P
        real = attention_mask.bool()
        first = int(real[:, :P].any(0).long().argmax())
        prompt_ids, prompt_mask = input_ids[:, first:P], attention_mask[:, first:P]  # (B, Pc)
        Pc = P - first
        response = real[:, P:]
        lengths = torch.where(
            response.any(1), T - response.flip(1).long().argmax(1), 1
        )  # (B,) columns to score
        prompt_rows, inverse = distinct_prompts(prompt_ids, prompt_mask)
        B, U = input_ids.shape[0], prompt_rows.numel()
        longest = int(lengths.max())
        if (B - U) * Pc <= SCORING_OVERHEAD * B * (Pc + longest):  # too few repeats to pay a second forward
            prompt_lengths = prompt_mask.sum(1)
            buckets = length_buckets(prompt_lengths + lengths, overhead=SCORING_OVERHEAD)
            parts = [
                self._score_padded(input_ids[rows], attention_mask[rows], P, with_values, with_entropy)
                for rows in buckets
            ]
            return _gather_scores(parts, buckets)

        ids, mask = prompt_ids[prompt_rows], prompt_mask[prompt_rows]  # (U, Pc)
        head_logits, head_values, cache = self.forward_tokens(
            ids,
            mask,
            position_ids_from_mask(mask),
            cache=DynamicCache(config=self.model.config),
            logits_to_keep=1,
            with_values=with_values,
        )  # (U, 1, V), (U, 1): they score each row's first response token
        layers = [(layer.keys, layer.values) for layer in cache.layers]  # (U, H, Pc, D) each
        buckets = length_buckets(lengths, overhead=SCORING_OVERHEAD, fixed=Pc)
        parts = []
        for rows in buckets:
            width = int(lengths[rows].max())
            u = inverse[rows]  # (n,) each row's prompt
            logits, values = head_logits[u], head_values[u] if head_values is not None else None
            if width > 1:  # feed the response but its last token (nothing reads the logits after it)
                block_mask = torch.cat(
                    [mask[u], attention_mask[rows, P : P + width - 1]], 1
                )  # (n, Pc + w - 1)
                repeated = DynamicCache(ddp_cache_data=[(k[u], v[u]) for k, v in layers])
                block_logits, block_values, _ = self.forward_tokens(
                    input_ids[rows, P : P + width - 1],
                    block_mask,
                    position_ids_from_mask(block_mask)[:, Pc:],
                    cache=repeated,
                    with_values=with_values,
                )
                logits = torch.cat([logits, block_logits], 1)  # (n, w, V)
                if values is not None:
                    assert block_values is not None  # both forwards ran with the same with_values
                    values = torch.cat([values, block_values], 1)
            parts.append(
                _pad_scores(
                    self._score_columns(logits, values, input_ids[rows, P : P + width], with_entropy), T
                )
            )
        return _gather_scores(parts, buckets)

    @functools.cached_property
    def _full_attention_cache(self) -> bool:
        """Whether every layer's KV cache is a plain full-attention one, so a prompt's cache can be
        repeated to its rows (sliding-window layers keep their plain padded forward)."""
        return all(type(layer) is DynamicLayer for layer in DynamicCache(config=self.model.config).layers)

    def _score_columns(
        self, logits: Tensor, values: Tensor | None, tokens: Tensor, with_entropy: bool
    ) -> SequenceScores:
        """Logprobs, values and entropy of ``tokens`` (B, S) from the logits (B, S, V) and values (B, S)
        of the states before them."""
        with self._model_context():
            logp_all = sampling_logprobs(logits, self.sampling, keep=tokens)  # (B, S, V)
            logprobs = logp_all.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
            entropy = None
            if with_entropy:  # of the sampling distribution itself, without the kept token
                # a logged statistic that no loss differentiates: autograd keeps no (B, S, V) for it
                with torch.no_grad():
                    plain = logp_all if self.sampling.is_plain else sampling_logprobs(logits, self.sampling)
                    entropy = entropy_from_logprobs(plain)
        return SequenceScores(logprobs, values, entropy)

    @torch.no_grad()
    def sample(self, logits: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Sample one token per row from raw logits (B, V); returns actions (B,) long, logprobs (B,)."""
        logp = sampling_logprobs(logits, self.sampling)  # (B, V)
        actions = sample_categorical(logp, generator)  # (B, 1)
        logprobs = logp.gather(1, actions).squeeze(1)
        # NaN/inf logits make every logprob of the row NaN; a sampled token is otherwise never -inf.
        # (One tiny sync; the rollout syncs on the actions right after anyway.)
        if not bool(torch.isfinite(logprobs).all()):
            raise RuntimeError(
                "the policy's logits are not finite (NaN/inf), so no token can be sampled; the weights "
                "have probably diverged: lower the learning rate or restore the last good checkpoint"
            )
        return actions.squeeze(1), logprobs


def _pad_scores(scores: SequenceScores, T: int) -> SequenceScores:
    """Zero-pad (B, S) scores to T columns (the columns after every row's end)."""
    S = scores.logprobs.shape[1]
    if S == T:
        return scores

    def pad(x: Tensor) -> Tensor:
        return torch.nn.functional.pad(x, (0, T - S))

    values, entropy = (pad(x) if x is not None else None for x in (scores.values, scores.entropy))
    return SequenceScores(pad(scores.logprobs), values, entropy)


def _gather_scores(parts: list[SequenceScores], buckets: list[Tensor]) -> SequenceScores:
    """Scores of row buckets (each (n_i, T)) back in the batch's row order (B, T)."""
    if len(parts) == 1:
        order = buckets[0]
        if torch.equal(order, torch.arange(order.numel(), device=order.device)):
            return parts[0]
    rows = torch.cat(buckets)
    back = torch.empty_like(rows)
    back[rows] = torch.arange(rows.numel(), device=rows.device)  # the inverse permutation

    def join(pieces: list[Tensor]) -> Tensor:
        return torch.cat(pieces)[back]

    def join_optional(field: str) -> Tensor | None:
        pieces = [getattr(p, field) for p in parts]
        return None if pieces[0] is None else join(pieces)

    return SequenceScores(
        join([p.logprobs for p in parts]), join_optional("values"), join_optional("entropy")
    )


def fuse_tanh_gelu(model: nn.Module) -> int:
    """Swap transformers' Python-level tanh-GELU modules (GPT-2's ``gelu_new``, ``gelu_fast``: five
    elementwise ops and their five backward passes) for ``nn.GELU(approximate="tanh")``, the same
    function as one fused kernel (outputs agree to ~2e-7). The MLP's activation is ~20% of a GPT-2
    forward + backward in fp32 on a CPU. Only the in-memory modules change: the config, the weights
    and what ``save_pretrained`` writes stay as they were. Returns how many modules were swapped."""
    from transformers.activations import FastGELUActivation, NewGELUActivation

    swaps = [
        (parent, name)
        for parent in model.modules()
        for name, child in parent.named_children()
        if type(child) in (NewGELUActivation, FastGELUActivation)
    ]
    for parent, name in swaps:
        setattr(parent, name, nn.GELU(approximate="tanh"))
    return len(swaps)


def _cache_kwarg(model: Any) -> str:
    """The KV-cache argument's name: ``cache`` in transformers >= 5.x, ``past_key_values`` before."""
    base = model.get_base_model() if hasattr(model, "peft_config") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def _add_lora(model: PreTrainedModel, rank: int, alpha: float | None) -> Any:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as err:  # pragma: no cover - peft is a dev dependency
        raise ImportError("lora_rank > 0 needs peft: pip install 'rlenv[lora]'") from err
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha if alpha is not None else 2 * rank,  # type: ignore[arg-type]  # peft says int; scaling is alpha / r
        lora_dropout=0.0,  # dropout off everywhere, see the module docstring
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def check_model_dir(path: Path) -> None:
    """Fail before any loading with an error that names the fix."""
    if not path.exists():
        raise FileNotFoundError(
            f"model path {str(path)!r} does not exist; pass a local directory written by save_pretrained "
            "(nothing is downloaded), e.g. rlenv.DEFAULT_MODEL"
        )
    if not (path / "config.json").exists():
        raise FileNotFoundError(
            f"{str(path)!r} has no config.json, so it is not a saved model; point at the directory that "
            "model.save_pretrained(...) wrote"
        )
    if not any(path.glob("*.safetensors")) or all(
        p.name == VALUE_HEAD_FILE for p in path.glob("*.safetensors")
    ):
        legacy = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt")]
        hint = (
            f"; found {legacy}, which is pickle-based and not loaded for safety: convert it once with "
            "model.save_pretrained(path, safe_serialization=True) in a trusted session"
            if legacy
            else "; save the model with model.save_pretrained(path)"
        )
        raise FileNotFoundError(f"no safetensors weights (model*.safetensors) in {str(path)!r}{hint}")
