"""The default torch thread count of a run (docs/speed.md "Thread policy")."""

import os

import pytest
import torch

from agents.training import trainer
from agents.training.config import TrainConfig
from agents.training.trainer import Trainer, default_threads


@pytest.mark.parametrize(
    "cpus,torch_threads,processes,expected",
    [
        (2, 2, 1, 1),  # the 2-core machine: one core left to the rest of it
        (1, 1, 1, 1),  # never below one
        (16, 8, 1, 8),  # SMT: torch's own count (physical cores) already leaves CPUs free
        (8, 8, 1, 7),
        (8, 8, 2, 4),  # two ranks on one machine split its CPUs
        (2, 2, 2, 1),
    ],
)
def test_default_threads_leaves_a_cpu_and_splits_between_ranks(
    monkeypatch, cpus, torch_threads, processes, expected
):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: torch_threads)
    assert default_threads(processes) == expected


def test_a_run_without_threads_uses_the_default_and_threads_overrides_it(monkeypatch, tmp_path):
    caller = torch.get_num_threads()
    monkeypatch.setattr(trainer, "default_threads", lambda processes=1: 1)
    try:
        for threads, expected in ((None, 1), (3, 3)):
            torch.set_num_threads(2)
            Trainer(
                TrainConfig(
                    algo="reinforce",
                    env="rlenv/PositiveReview-v0",
                    steps=1,
                    threads=threads,
                    out=str(tmp_path / str(threads)),
                )
            )
            assert torch.get_num_threads() == expected
    finally:
        torch.set_num_threads(caller)
