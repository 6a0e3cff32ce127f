"""The policy-gradient algorithms, one file each over :mod:`agents.algorithms.base`, and their registry.

Adding an algorithm: declare it in :mod:`agents.algorithms.specs` (its name, one-line help, defaults,
options and constraints; added to ``SPECS``), write ``agents/algorithms/<name>.py`` with a subclass
of :class:`Algorithm` whose ``spec`` is that declaration and whose ``update`` is the learning step,
then add the class to :mod:`agents.algorithms.registry`. The CLI's ``--algo`` choices and
:class:`agents.training.config.TrainConfig`'s checks read the specs; the trainer reads the registry.

The specs import no torch and load with this package; the classes (and torch) load on first access
of their names, so that ``rlenv train --help`` and a bad flag answer without torch.
"""

from typing import TYPE_CHECKING

from agents.algorithms.specs import ALGOS, SPECS, Algo, AlgorithmSpec, algorithm_spec
from reward_models.lazy import lazy_getattr

if TYPE_CHECKING:  # the lazy names below, for type checkers and the API reference
    from agents.algorithms.base import Algorithm, batch_stats
    from agents.algorithms.cispo import CISPO
    from agents.algorithms.dapo import DAPO
    from agents.algorithms.grpo import GRPO
    from agents.algorithms.gspo import GSPO
    from agents.algorithms.ppo import PPO
    from agents.algorithms.rebn import ReBN
    from agents.algorithms.registry import ALGORITHMS, algorithm_class
    from agents.algorithms.reinforce import Reinforce
    from agents.algorithms.reinforce_pp import ReinforcePP
    from agents.algorithms.rloo import RLOO
    from agents.algorithms.sapo import SAPO

_LAZY = {
    "Algorithm": "agents.algorithms.base",
    "batch_stats": "agents.algorithms.base",
    "ALGORITHMS": "agents.algorithms.registry",
    "algorithm_class": "agents.algorithms.registry",
    "CISPO": "agents.algorithms.cispo",
    "DAPO": "agents.algorithms.dapo",
    "GRPO": "agents.algorithms.grpo",
    "GSPO": "agents.algorithms.gspo",
    "PPO": "agents.algorithms.ppo",
    "ReBN": "agents.algorithms.rebn",
    "Reinforce": "agents.algorithms.reinforce",
    "ReinforcePP": "agents.algorithms.reinforce_pp",
    "RLOO": "agents.algorithms.rloo",
    "SAPO": "agents.algorithms.sapo",
}

__getattr__ = lazy_getattr(__name__, _LAZY)

__all__ = [
    "ALGORITHMS",
    "ALGOS",
    "CISPO",
    "DAPO",
    "GRPO",
    "GSPO",
    "PPO",
    "RLOO",
    "SAPO",
    "SPECS",
    "Algo",
    "Algorithm",
    "AlgorithmSpec",
    "ReBN",
    "Reinforce",
    "ReinforcePP",
    "algorithm_class",
    "algorithm_spec",
    "batch_stats",
]
