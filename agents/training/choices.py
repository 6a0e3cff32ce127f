"""The named choices of the shared maths as ``Literal`` types, in a module that imports no torch.

:mod:`agents.training.config` (the ``--kl-estimator``, ``--loss-aggregation`` and ``--scale-rewards``
choices), :mod:`agents.algorithms.specs` (each algorithm's defaults among them) and the maths that
implements them (:mod:`~agents.training.kl`, :mod:`~agents.training.losses`,
:mod:`~agents.training.advantages`) read them here, so ``rlenv train --help`` and a bad flag need no torch.
"""

from __future__ import annotations

from typing import Literal

KLEstimator = Literal["k1", "k2", "k3"]
"""per-token estimators of KL(pi || ref) (agents.training.kl says how each behaves in a loss)"""

LossAggregation = Literal["token-mean", "sequence-mean", "sequence-sum"]
"""how per-token losses become one scalar (agents.training.losses.aggregate)"""

RewardScaling = Literal["group", "batch", "none"]
"""what group-centred rewards are divided by: the group's std, the batch's, or nothing (Dr. GRPO)"""
