"""One update of an algorithm on the realistic batch, in one process or as one rank of several.

    python -m tests.agents.data_parallel_worker CASES_JSON RANK WORLD STORE_FILE OUT_FILE

CASES_JSON maps a case name to ``[algo, config overrides]``; every case runs in the same process group
(starting the processes is the slow part).

Rank r of W takes rows [r B/W, (r+1) B/W) of the global batch (whole groups, as the trainer's
seeding gives them) and this rank's share of the config; the process group is gloo over a shared
file (no port to pick, so nothing can race for one). Saves, for the parent test to compare, the
gradient the optimizer stepped on (after the all-reduce), the weights after the step and the stats.
"""

from __future__ import annotations

import datetime
import json
import sys

import torch

from agents.training.distributed import Ranks
from tests.agents.reference_batches import make_realistic_setup, shard_rows


def one_update(algo: str, overrides: dict, ranks: Ranks) -> dict:
    """The update of ``ranks.rank``'s shard; returns {"grads", "weights", "stats"}."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    s = make_realistic_setup(algo, value_head=algo == "ppo", ranks=ranks, **overrides)
    B = s.case.batch.batch_size
    share = B // ranks.world_size
    rows = slice(ranks.rank * share, (ranks.rank + 1) * share)
    algorithm, grads = s.algorithm, []
    real_step = algorithm.optimizer.step

    def step(*args, **kwargs):  # the gradient every rank steps on: after the all-reduce and the clip
        grads.append([p.grad.detach().clone() for g in algorithm.optimizer.param_groups for p in g["params"]])
        return real_step(*args, **kwargs)

    algorithm.optimizer.step = step
    stats = algorithm.update(shard_rows(s.case.batch, rows), s.case.rewards[rows])
    weights = [p.detach().clone() for g in algorithm.optimizer.param_groups for p in g["params"]]
    return {
        "grads": grads,
        "weights": weights,
        "stats": {k: v for k, v in stats.items() if isinstance(v, float)},
    }


def main(argv: list[str]) -> None:
    cases, rank, world, store, out = argv
    rank, world = int(rank), int(world)
    torch.distributed.init_process_group(
        "gloo",
        init_method=f"file://{store}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=600),
    )
    ranks = Ranks(rank=rank, world_size=world)
    try:
        results = {
            name: one_update(algo, overrides, ranks) for name, (algo, overrides) in json.loads(cases).items()
        }
        torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()
    torch.save(results, out)


if __name__ == "__main__":
    main(sys.argv[1:])
