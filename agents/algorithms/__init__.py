"""The policy-gradient algorithms, one file each over :mod:`agents.algorithms.base`, and their registry.

Adding an algorithm: write ``agents/algorithms/<name>.py`` with a subclass of :class:`Algorithm`
(its ``name``, declarations and ``update``), then add the class to ``ALGORITHMS`` below. The CLI's
``--algo`` choices, :class:`agents.training.config.TrainConfig`'s checks and the trainer all read the registry.
"""

from __future__ import annotations

from typing import Literal

from agents.algorithms.base import REGISTRY, Algorithm, batch_stats
from agents.algorithms.cispo import CISPO
from agents.algorithms.dapo import DAPO
from agents.algorithms.grpo import GRPO
from agents.algorithms.gspo import GSPO
from agents.algorithms.ppo import PPO
from agents.algorithms.rebn import ReBN
from agents.algorithms.reinforce import Reinforce
from agents.algorithms.reinforce_pp import ReinforcePP
from agents.algorithms.rloo import RLOO
from agents.algorithms.sapo import SAPO
from agents.errors import ConfigError

REGISTRY.update({
    cls.name: cls for cls in (Reinforce, PPO, RLOO, GRPO, DAPO, GSPO, CISPO, SAPO, ReinforcePP, ReBN)
})
ALGORITHMS: dict[str, type[Algorithm]] = REGISTRY
ALGOS: tuple[str, ...] = tuple(ALGORITHMS)
Algo = Literal[ALGOS]  # type: ignore[valid-type]  # the --algo choices, built from the registry


def algorithm_class(name: str) -> type[Algorithm]:
    """The :class:`Algorithm` subclass registered as ``name`` (``--algo``)."""
    if name not in ALGORITHMS:
        raise ConfigError(f"unknown algo {name!r}; choose one of {', '.join(ALGORITHMS)} (--algo)")
    return ALGORITHMS[name]


__all__ = ["ALGORITHMS", "ALGOS", "CISPO", "DAPO", "GRPO", "GSPO", "PPO", "RLOO", "SAPO", "Algo", "Algorithm", "ReBN",
           "Reinforce", "ReinforcePP", "algorithm_class", "batch_stats"]
