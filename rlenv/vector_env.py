"""``TextGenVectorEnv``: N text-generation episodes stepped as one numpy batch.

Layer: beside :mod:`rlenv.env`, above every episode layer; the same setup, an
:class:`rlenv.core.EpisodeBatch` of N.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from rlenv.core import EpisodeBatch, check_actions
from rlenv.env_setup import make_setup
from rlenv.prompts import Prompt, as_prompt


class TextGenVectorEnv(VectorEnv):
    """The batched form of :class:`rlenv.TextGenEnv` (same arguments, same MDP per sub-env).

    Made by ``gym.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")``. Each step
    is a few numpy operations on (N, L) buffers, and one reward-model call scores every episode
    that ends on that step. Sub-env i draws its prompts with its own RNG seeded ``seed + i``, so
    it matches ``SyncVectorEnv`` of single envs step for step.

    Autoreset (``autoreset_mode``, Gymnasium's semantics):

    - ``NextStep`` (default): the step after an episode ends resets that sub-env; its action is
      ignored and its reward is 0.
    - ``SameStep``: the ending step resets at once; ``info["final_obs"]`` and
      ``info["final_info"]`` hold the finished episode.
    - ``Disabled``: for synchronous rollout batches. A finished sub-env ignores later actions,
      returns reward 0 and ``terminated = truncated = False``; :attr:`done` masks them. Stepping
      when every sub-env is done raises; ``reset(options={"reset_mask": m})`` restarts some.

    Reset options: ``prompts`` (one string for all, or N strings/dicts), ``group_size`` (draw
    N / G prompts and repeat each G times consecutively, for GRPO/RLOO), ``reset_mask``.

    Groups survive autoreset: the ``group_size`` of the last reset is remembered, and the k-th
    episode of every member of a group gets the group's k-th prompt (drawn by the group's first
    sub-env), however long each member's earlier episodes were. A ``reset_mask`` must therefore
    cover whole groups.
    """

    def __init__(self, num_envs: int = 1, *, autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
                 render_mode: str | None = None, **env_kwargs: Any) -> None:
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError:
            raise ValueError(
                f"autoreset_mode must be one of {[m.value for m in AutoresetMode]}, got {autoreset_mode!r}"
            ) from None
        if render_mode not in (None, "ansi"):
            raise ValueError(f"the vector env renders only 'ansi' (a list of texts), got {render_mode!r}")
        self.num_envs = int(num_envs)
        self.render_mode = render_mode
        self.setup = make_setup(**env_kwargs)
        self.metadata = {"autoreset_mode": mode, "render_modes": ["ansi"]}
        self.single_observation_space = self.setup.observation_space()
        self.single_action_space = spaces.Discrete(self.setup.vocab_size)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._episodes = EpisodeBatch.create(self.setup, self.num_envs)
        self._rngs = [seeding.np_random()[0] for _ in range(self.num_envs)]
        self._pending_reset = np.zeros(self.num_envs, dtype=bool)
        self._group_size = 1
        # groups' prompt queues: sub-env i's next episode takes _group_prompts[i // G][_episode_index[i]]
        self._episode_index = np.zeros(self.num_envs, dtype=np.int64)
        self._group_prompts: list[dict[int, Prompt]] = [{} for _ in range(self.num_envs)]

    # ---- convenience for agents -------------------------------------------------------------
    tokenizer = property(lambda self: self.setup.tokenizer)
    max_prompt_tokens = property(lambda self: self.setup.max_prompt_tokens)
    max_new_tokens = property(lambda self: self.setup.max_new_tokens)
    pad_token_id = property(lambda self: self._episodes.pad_id)
    eos_token_id = property(lambda self: self._episodes.eos_id)

    @property
    def done(self) -> np.ndarray:
        """(N,) bool: sub-envs whose episode has ended and that have not been reset."""
        return self._episodes.done.copy()

    @property
    def autoreset_mode(self) -> AutoresetMode:
        return self.metadata["autoreset_mode"]

    # ---- Gymnasium API ----------------------------------------------------------------------
    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        options = dict(options or {})
        unknown = set(options) - {"prompts", "group_size", "reset_mask"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; use 'prompts', 'group_size' or 'reset_mask'")
        if seed is not None:
            seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"got {len(seeds)} seeds for {self.num_envs} envs")
            self._rngs = [seeding.np_random(s)[0] for s in seeds]
        mask = np.asarray(options.get("reset_mask", np.ones(self.num_envs, dtype=bool)), dtype=bool)
        if mask.shape != (self.num_envs,):
            raise ValueError(f"reset_mask must have shape ({self.num_envs},), got {mask.shape}")
        rows = np.flatnonzero(mask)
        if "prompts" not in options:
            # a partial reset without the option keeps the remembered groups; a full one starts ungrouped
            default_group = self._group_size if rows.size != self.num_envs else 1
            self._start_groups(rows, int(options.get("group_size", default_group)))
        for i, prompt in zip(rows, self._draw_prompts(rows, options), strict=True):
            self._episodes.start(int(i), prompt)
        self._pending_reset[rows] = False
        infos: dict[str, Any] = {}
        for i in rows:
            started = self._episodes.prompts[i]
            assert started is not None  # started just above
            infos = self._add_info(infos, {"prompt": started.text}, int(i))
        return self._episodes.observation(), infos

    def step(
        self, actions: Any
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = check_actions(actions, self.num_envs, self.setup.vocab_size)
        infos: dict[str, Any] = {}
        resetting = np.flatnonzero(self._pending_reset)
        for i, prompt in zip(resetting, self._draw_prompts(resetting, {}), strict=True):
            self._episodes.start(int(i), prompt)
            infos = self._add_info(infos, {"prompt": prompt.text}, int(i))
        active = ~self._episodes.done
        active[resetting] = False
        self._pending_reset[:] = False
        if not active.any() and resetting.size == 0:
            raise RuntimeError(
                "step() called but every sub-env's episode has ended; call reset() "
                "(or use autoreset_mode='NextStep')"
            )
        out = self._episodes.step(actions, active)
        ended = np.flatnonzero(out.terminated | out.truncated)
        mode = self.autoreset_mode
        if mode == AutoresetMode.SAME_STEP and ended.size:
            for row in sorted(set(out.infos) - set(ended.tolist())):  # multi-turn: a turn ended
                infos = self._add_info(infos, out.infos[row], row)
            infos = self._reset_same_step(infos, ended, [out.infos[int(i)] for i in ended])
        else:
            for row in sorted(out.infos):
                infos = self._add_info(infos, out.infos[row], row)
            if mode == AutoresetMode.NEXT_STEP:
                self._pending_reset[ended] = True
        return self._episodes.observation(), out.rewards, out.terminated, out.truncated, infos

    def _reset_same_step(self, infos: dict[str, Any], ended: np.ndarray,
                         ended_infos: list[dict[str, Any]]) -> dict[str, Any]:
        final_obs = np.full(self.num_envs, None, dtype=object)
        final_info: dict[str, Any] = {}
        for i, info in zip(ended, ended_infos, strict=True):
            final_obs[i] = self._episodes.observation(int(i))
            final_info = self._add_info(final_info, info, int(i))
        for i, prompt in zip(ended, self._draw_prompts(ended, {}), strict=True):
            self._episodes.start(int(i), prompt)
            infos = self._add_info(infos, {"prompt": prompt.text}, int(i))
        mask = np.zeros(self.num_envs, dtype=bool)
        mask[ended] = True
        infos.update(final_obs=final_obs, _final_obs=mask, final_info=final_info, _final_info=mask)
        return infos

    def _draw_prompts(self, rows: np.ndarray, options: dict[str, Any]) -> list[Prompt]:
        if "prompts" in options:
            forced = options["prompts"]
            if isinstance(forced, str):
                return [Prompt(forced)] * len(rows)
            if isinstance(forced, (list, tuple)) and forced and isinstance(forced[0], dict) and "role" in forced[0]:
                return [as_prompt(forced, "options['prompts']")] * len(rows)  # one conversation for all
            if len(forced) != self.num_envs:
                raise ValueError(f"options['prompts'] has {len(forced)} entries for {self.num_envs} envs")
            return [as_prompt(forced[i], f"options['prompts'][{i}]") for i in rows]
        return [self._next_group_prompt(int(i)) for i in rows]

    def _start_groups(self, rows: np.ndarray, group: int) -> None:
        """Begin fresh prompt queues for the groups ``rows`` covers (whole groups only)."""
        if group < 1 or self.num_envs % group:
            raise ValueError(f"group_size={group} must divide num_envs={self.num_envs}")
        previous = self._group_size
        if group != previous and rows.size != self.num_envs:
            raise ValueError(
                f"group_size changes from {previous} to {group} but reset_mask covers only {rows.size} of "
                f"{self.num_envs} sub-envs; reset all of them to regroup"
            )
        leaders = np.unique(rows - rows % group)
        members = (leaders[:, None] + np.arange(group)).reshape(-1)
        if members.size != rows.size:
            raise ValueError(
                f"reset_mask covers part of a group of {group} (sub-envs {sorted(set(members) - set(rows))} "
                "are left out); GRPO/RLOO groups must restart together, so reset whole groups"
            )
        self._group_size = group
        self._episode_index[rows] = 0
        for leader in leaders:
            self._group_prompts[int(leader)] = {}

    def _next_group_prompt(self, i: int) -> Prompt:
        """Sub-env i's next prompt: its group's k-th, drawn by the group's first sub-env on first use."""
        group = self._group_size
        leader, k = i - i % group, int(self._episode_index[i])
        queue = self._group_prompts[leader]
        if k not in queue:
            queue[k] = self.setup.prompts.sample(self._rngs[leader])
        prompt = queue[k]
        self._episode_index[i] += 1
        oldest = int(self._episode_index[leader : leader + group].min())
        for done_k in [j for j in queue if j < oldest]:  # every member has moved past it
            del queue[done_k]
        return prompt

    def render(self) -> tuple[str, ...] | None:
        if self.render_mode != "ansi":
            return None
        return tuple(self._episodes.text(i) for i in range(self.num_envs))
