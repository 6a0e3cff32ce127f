"""A remote OpenEnv text environment as the responder of a token-level multi-turn env.

Layer: tasks (a responder and prompts for the multi-turn layer, like the task builders).

``rlenv/OpenEnvRemote-v0`` (or :func:`remote_openenv`) lets rlenv's token-level agents play any
OpenEnv environment whose actions and observations carry text: each episode opens a WebSocket
session with OpenEnv's own client, the remote ``reset`` observation's ``prompt_key`` field is the
prompt, every policy turn is sent as ``{action_key: turn_text}``, and the remote observation's
``reply_key`` field (reward, done) is appended as the env's reply, tokenized once.

Served rlenv ids speak this protocol with the defaults (``action_key="text"``, ``prompt_key="text"``,
``reply_key="reply"``), so ``rlenv serve rlenv/GuessNumber-v0`` + ``OpenEnvRemote-v0`` plays the
same game as ``GuessNumber-v0`` locally. Remote seeds are drawn from the env's RNG, so
``reset(seed=s)`` replays the same remote episodes when the remote env is seeded.

Needs the optional extra ``pip install 'rlenv[serve]'``. A lost server raises a
``ConnectionError`` naming the URL.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np

from rlenv.turns import TurnHistory


class RemoteSession:
    """One remote episode: a connected OpenEnv client (closed when the episode or the env ends)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._finalizer = weakref.finalize(self, _close_quietly, client)

    def close(self) -> None:
        self._finalizer()


def _close_quietly(client: Any) -> None:
    try:
        client.close()
    except Exception:  # noqa: BLE001 - the server may already be gone; nothing is left to release
        pass


class RemoteOpenEnv:
    """The prompt source and the responder of one token-level env, backed by remote sessions."""

    def __init__(self, base_url: str, action_key: str = "text", prompt_key: str = "text", reply_key: str = "reply",
                 connect_timeout_s: float = 10.0, message_timeout_s: float = 60.0) -> None:
        try:
            from openenv.core import GenericEnvClient
        except ImportError as err:  # pragma: no cover - only without the extra
            raise ImportError(f"a remote OpenEnv env needs the optional extra ({err}); pip install 'rlenv[serve]'") from None
        self._client_cls = GenericEnvClient
        self.base_url = base_url
        self.action_key, self.prompt_key, self.reply_key = action_key, prompt_key, reply_key
        self.timeouts = {"connect_timeout_s": connect_timeout_s, "message_timeout_s": message_timeout_s}
        self._open: weakref.WeakSet[RemoteSession] = weakref.WeakSet()
        self._lock = threading.Lock()
        self.__name__ = f"openenv at {base_url}"

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ConnectionError, OSError, TimeoutError) as err:
            raise ConnectionError(f"the OpenEnv server at {self.base_url} did not answer {what} ({err}); "
                                  "is it running (rlenv serve ID --port ...)?") from err
        except RuntimeError as err:
            if "Server error" in str(err):
                raise
            raise ConnectionError(f"the OpenEnv server at {self.base_url} closed the session during {what} ({err}); "
                                  "is it still running?") from err

    def draw_prompt(self, rng: np.random.Generator) -> dict[str, Any]:
        """Prompt source ``f(rng)``: open a remote session, reset it with a seed from ``rng``."""
        client = self._client_cls(base_url=self.base_url, **self.timeouts).sync()
        self._call("connect", client.connect)
        session = RemoteSession(client)
        with self._lock:
            self._open.add(session)
        result = self._call("reset", client.reset, seed=int(rng.integers(2**31)))
        prompt = self._field(result.observation, self.prompt_key, "reset")
        return {"prompt": prompt, "remote": session}

    def __call__(self, history: TurnHistory) -> tuple[str, float, bool]:
        """Responder: send the policy's turn, return the remote reply, reward and done."""
        session: RemoteSession = history.columns["remote"]
        result = self._call("step", session.client.step, {self.action_key: history.last_text})
        done = bool(result.done)
        reply = "" if done else self._field(result.observation, self.reply_key, "step")
        if done or history.budget_left <= 1:
            session.close()
        return reply, float(result.reward or 0.0), done

    def _field(self, observation: dict[str, Any], key: str, what: str) -> str:
        if key not in observation or not isinstance(observation[key], str):
            raise KeyError(f"the {what} observation of {self.base_url} has no text field {key!r} "
                           f"(fields: {sorted(observation)}); pass prompt_key=/reply_key= naming its text fields")
        return observation[key]

    def close(self) -> None:
        with self._lock:
            sessions = list(self._open)
        for session in sessions:
            session.close()


def remote_openenv(base_url: str = "http://127.0.0.1:8000", action_key: str = "text", prompt_key: str = "text",
                   reply_key: str = "reply", **env_kwargs: Any) -> dict[str, Any]:
    """TextGenEnv kwargs of a token-level env whose replies come from a remote OpenEnv text env."""
    remote = RemoteOpenEnv(base_url, action_key, prompt_key, reply_key)
    defaults = dict(prompts=remote.draw_prompt, responder=remote, end_of_turn="\n", stop_strings=["\n"],
                    max_prompt_tokens=32, max_new_tokens=64)
    return {**defaults, **env_kwargs}
