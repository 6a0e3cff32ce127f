"""Bridges to other RL libraries: Stable-Baselines3's PPO/A2C through an LM-backed actor-critic
policy (:mod:`~agents.bridges.sb3`, its fast forwards in :mod:`~agents.bridges.sb3_forward`) and
sb3-contrib's MaskablePPO with NLPO-style top-k / top-p masks (:mod:`~agents.bridges.nlpo`)."""
