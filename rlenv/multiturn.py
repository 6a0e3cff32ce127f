"""Multi-turn envs, the public names in one place: the protocol of :mod:`rlenv.turns` (where the
contract is documented) and :func:`register_responder_env` from :mod:`rlenv.registration`.

Layer: on top, beside :mod:`rlenv.registration` (it imports from there and from the turns layer);
nothing inside rlenv imports this module, so gathering names here opens no back door.
"""

from rlenv.registration import ResponderEntryPoint, register_responder_env
from rlenv.turns import (
    MultiTurnEpisodes,
    Responder,
    Turn,
    TurnHistory,
    TurnRules,
    check_response,
    turn_rules,
)

__all__ = [
    "MultiTurnEpisodes",
    "Responder",
    "ResponderEntryPoint",
    "Turn",
    "TurnHistory",
    "TurnRules",
    "check_response",
    "register_responder_env",
    "turn_rules",
]
