"""Training: the policy, rollouts through the env, the maths the algorithms share, and the loop.

:mod:`~agents.training.policy` (``LMPolicy``), :mod:`~agents.training.kv_cache`,
:mod:`~agents.training.rollout` (``collect_rollouts``), :mod:`~agents.training.scoring` (the update's
shared scoring passes); the shared pieces :mod:`~agents.training.advantages`,
:mod:`~agents.training.losses`, :mod:`~agents.training.kl`; the run: :mod:`~agents.training.config`
(``TrainConfig``), :mod:`~agents.training.trainer`, :mod:`~agents.training.checkpoint`,
:mod:`~agents.training.distributed`, :mod:`~agents.training.run_log`,
:mod:`~agents.training.env_factory`; and looking at a policy: :mod:`~agents.training.evaluation`
(the held-out protocol the trainer and ``rlenv bench`` share), :mod:`~agents.training.sampling`,
:mod:`~agents.training.transcripts`. The algorithms themselves live in :mod:`agents.algorithms`.
"""
