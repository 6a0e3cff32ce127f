"""Data-parallel training over several processes, started by ``accelerate launch``.

    accelerate launch --num_processes 2 -m agents.cli train --algo grpo --batch-size 32 ...

Each process (rank) owns its own vector env of ``batch_size / world_size`` sub-envs and rolls out its
shard of the global batch; rank r's sub-env i is seeded exactly like sub-env ``r * local + i`` of a
one-process run, so the ranks' prompts together are the one-process batch's prompts (episodes never
repeat across ranks, and GRPO/RLOO groups never straddle two ranks). After every backward the
gradients are averaged over the ranks (an all-reduce, the arithmetic DDP does), so every rank takes
the same optimizer step and the weights stay bit-identical — checked at every checkpoint, where each
rank's weight hash is gathered and a mismatch stops the run. Statistics that steer training (the
adaptive KL coefficient's KL, REINFORCE's batch baseline) and the logged metrics are reduced over the
ranks; only rank 0 writes metrics, plots and checkpoints.

accelerate sets up the process group (gloo on CPU, NCCL on GPUs) and each rank's device; the
gradient all-reduce is done here rather than by wrapping the model in DDP because the policy calls
its model's submodules directly (value head, LoRA views, the KV-cached rollout), which DDP's forward
hook does not see. Without ``accelerate launch`` (one process) nothing here does anything.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from agents.errors import ConfigError


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes."""

    rank: int = 0
    world_size: int = 1
    device: torch.device | None = None
    """the device accelerate assigned this rank (None: use the config's --device)"""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    # ---- collectives (no-ops in one process) -------------------------------------------------
    def average_gradients(self, parameters: list[nn.Parameter]) -> None:
        """Replace each gradient by its mean over the ranks (one flat all-reduce)."""
        if not self.distributed:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.distributed.all_reduce(flat, op=torch.distributed.ReduceOp.SUM)
        flat /= self.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def mean(self, value: float) -> float:
        """The mean of a per-rank number over the ranks."""
        if not self.distributed:
            return value
        t = torch.tensor([float(value)], dtype=torch.float64)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
        return float(t.item()) / self.world_size

    def std(self, values: torch.Tensor) -> torch.Tensor:
        """The unbiased std (0-dim) of ``values`` (this rank's share) over every rank's values together,
        so a statistic of "the batch" is the global batch's, as in one process."""
        return self.mean_and_std(values)[1]

    def mean_and_std(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean and unbiased std (0-dim each) of ``values`` (this rank's share) over every rank's
        values together, weighted by count: the ranks may hold different numbers of them (ReBN's turns)."""
        if not self.distributed:
            return values.mean(), values.std()
        v = values.detach().double().reshape(-1)
        t = torch.stack([v.new_tensor(float(v.numel())), v.sum(), (v * v).sum()])  # n, sum, sum of squares
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
        n, total, squares = t.tolist()
        n = max(n, 1.0)  # no value on any rank (all masked): mean 0 and std 0, not a ZeroDivisionError
        variance = max(squares - total * total / n, 0.0) / max(n - 1, 1.0)
        return values.new_tensor(total / n), values.new_tensor(variance**0.5)

    def any(self, flag: bool) -> bool:
        """True on every rank if any rank's ``flag`` is True (so all ranks stop on the same update)."""
        if not self.distributed:
            return flag
        t = torch.tensor([1.0 if flag else 0.0])
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item() > 0)

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (on every rank)."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()


SHARDED_LAUNCHES = {"ACCELERATE_USE_FSDP": "FSDP", "ACCELERATE_USE_DEEPSPEED": "DeepSpeed"}


def refuse_sharded_launch(environ: dict[str, str] | os._Environ[str]) -> None:
    """Stop a launch that asks for FSDP or DeepSpeed: rlenv would silently run plain data parallel
    (every rank holding the whole model) while the user believes the model is sharded."""
    for var, engine in SHARDED_LAUNCHES.items():
        if str(environ.get(var, "")).lower() in ("1", "true", "yes"):
            raise ConfigError(
                f"`accelerate launch` asked for {engine} ({var}), which rlenv does not support: it averages "
                "gradients itself and never shards the model. Launch plain data parallel instead "
                "(`accelerate launch --multi_gpu --num_processes N -m agents.cli train ...`, without an FSDP/"
                "DeepSpeed config); for a model too large for one device, train LoRA adapters (--lora-rank 16) "
                "with --precision bf16"
            )


def current_ranks() -> Ranks:
    """The ranks of this run: from accelerate when launched with several processes, else one process."""
    refuse_sharded_launch(os.environ)
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Ranks()
    from accelerate import PartialState

    # initialises torch.distributed from the launcher's environment: gloo on CPU, NCCL on GPUs
    state = PartialState(cpu=not torch.cuda.is_available())
    world = int(os.environ["WORLD_SIZE"])
    if state.num_processes != world:  # never run N independent copies into one output directory
        raise RuntimeError(
            f"launched as {world} processes but accelerate set up {state.num_processes} "
            f"({state.distributed_type}); launch with `accelerate launch --multi_gpu --num_processes {world} -m "
            "agents.cli train ...` (on CPU too) or torchrun"
        )
    device = state.device if state.device.type == "cuda" else None
    return Ranks(rank=state.process_index, world_size=state.num_processes, device=device)


def reduce_stats(stats: dict[str, Any], ranks: Ranks) -> dict[str, Any]:
    """Numeric statistics averaged over the ranks (every rank holds the same number of episodes, so
    a mean of rank means is the global mean); None and non-numbers pass through from this rank."""
    if not ranks.distributed:
        return stats
    keys = sorted(k for k, v in stats.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
    local = torch.tensor([float(stats[k]) for k in keys], dtype=torch.float64)
    torch.distributed.all_reduce(local, op=torch.distributed.ReduceOp.SUM)
    reduced = dict(stats)
    for key, value in zip(keys, (local / ranks.world_size).tolist(), strict=True):
        reduced[key] = value
    return reduced


def weights_sha256(module: nn.Module) -> str:
    """A hash of every parameter's bytes, in order: equal on two ranks iff their weights are identical."""
    digest = hashlib.sha256()
    for name, p in module.named_parameters():
        digest.update(name.encode())
        digest.update(p.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
