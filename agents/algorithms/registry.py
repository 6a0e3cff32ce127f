"""The algorithm classes by ``--algo`` name: each file's class, one line each, beside its spec.

Importing this module imports every algorithm (and torch); what the command line and the config need
before a model loads — names, defaults, constraints — is :mod:`agents.algorithms.specs`, which does not.
"""

from __future__ import annotations

from agents.algorithms.base import REGISTRY, Algorithm
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
from agents.algorithms.specs import algorithm_spec

REGISTRY.update(
    {cls.name: cls for cls in (Reinforce, PPO, RLOO, GRPO, DAPO, GSPO, CISPO, SAPO, ReinforcePP, ReBN)}
)
ALGORITHMS: dict[str, type[Algorithm]] = REGISTRY


def algorithm_class(name: str) -> type[Algorithm]:
    """The :class:`Algorithm` subclass registered as ``name`` (``--algo``)."""
    algorithm_spec(name)  # an unknown name: the same error the config gives
    return ALGORITHMS[name]
