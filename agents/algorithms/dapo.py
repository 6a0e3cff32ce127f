"""DAPO (Yu et al., 2025, "DAPO: An Open-Source LLM Reinforcement Learning System at Scale"): GRPO with
four changes and no KL term (beta = 0):

    J = E[ 1 / sum_i |o_i|  sum_i sum_t min(r_it A_i, clip(r_it, 1 - eps_low, 1 + eps_high) A_i) ]
        subject to  0 < |{o_i correct}| < G

1. Clip-higher: eps_low = 0.2, eps_high = 0.28 (``--clip-range``, ``--epsilon-high``), so a token the
   policy finds unlikely can still gain probability (against entropy collapse).
2. Dynamic sampling: groups whose rewards are all equal are dropped and fresh prompts rolled out until
   the batch is full, at most ``--max-extra-rollouts`` times (logged as ``extra_rollouts``).
3. Token-level loss: a token mean over the whole batch (``--loss-aggregation token-mean``), so long
   completions weigh by their tokens.
4. Soft overlong punishment: R += clamp(((T - L) - |o|) / L, max=0) over the last L = 20% of the token
   budget T (``--overlong-buffer``).

A_i is GRPO's group-normalised advantage. Everything is :class:`GRPO`'s machinery with these defaults.
"""

from __future__ import annotations

from agents.algorithms import specs
from agents.algorithms.grpo import GRPO


class DAPO(GRPO):
    spec = specs.DAPO
