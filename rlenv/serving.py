"""Serve any rlenv id as an OpenEnv environment (``rlenv serve ID``), with OpenEnv's own server.

Needs the optional extra: ``pip install 'rlenv[serve]'`` (the ``openenv`` package).

Wire protocol (OpenEnv's): ``POST /reset``, ``POST /step``, ``GET /state``, ``GET /health``,
``GET /schema`` and the session WebSocket ``/ws`` (messages ``reset`` / ``step`` / ``state`` /
``close``), which OpenEnv's ``EnvClient`` speaks. Typed models:

- :class:`RlenvAction`: ``{"token": id}`` (one token-level step) or ``{"text": "..."}`` (a whole
  turn, as :class:`rlenv.wrappers.TurnLevel` does it); exactly one of the two.
- :class:`RlenvObservation`: the Dict observation as lists (``input_ids``, ``attention_mask``,
  ``policy_mask`` for multi-turn ids), the ``text`` so far, the env's ``reply`` on this step,
  ``messages`` (chat envs: the conversation so far), ``terminated`` / ``truncated``, the ``episode_id`` and the step's ``info``.
- :class:`RlenvState`: env id, episode id, step count, done, prompt, text, tokens so far.

Sessions. A WebSocket connection owns one session (its episode lives until the socket closes);
OpenEnv refuses connections beyond ``max_sessions`` with ``CAPACITY_REACHED``. OpenEnv's HTTP
routes are stateless by design (a fresh env per request), so rlenv keeps HTTP episodes in a
server-side table keyed by ``episode_id``: ``/reset`` returns it (``observation.episode_id``)
and every ``/step`` must send it back (``{"action": {...}, "episode_id": "..."}``);
``GET /state/{episode_id}`` reads one, and ``POST /close`` (``{"episode_id": "..."}``) ends one and
frees its slot at once (the HTTP counterpart of the WebSocket's ``close`` message).

Capacity. HTTP and WebSocket episodes share the ``max_sessions`` slots. A new episode at capacity
takes the slot of a finished HTTP episode, else of one nobody has touched for ``idle_timeout``
seconds (``rlenv serve --idle-timeout``, default 300); if there is none it is refused with
``CAPACITY_REACHED`` / 503, saying when the next abandoned slot frees up. So an HTTP client that
resets and walks away holds its slot for at most ``idle_timeout``; WebSocket sessions idle that
long are closed too (OpenEnv's session reaper).

Bad input gets an error response and the server keeps serving: a malformed action is a 422
(HTTP) or ``VALIDATION_ERROR`` (WebSocket) carrying the same specific message; a token outside
the vocabulary or a non-string text is a 400 / ``EXECUTION_ERROR``; an unknown ``episode_id`` a
404; a step after the episode ended a 409 (a WebSocket step before any reset names the reset
message); no free slot a 503 (``CAPACITY_REACHED`` on the WebSocket), each naming the fix.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

try:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from openenv.core import Action, Environment, HTTPEnvServer, Observation, State
    from openenv.core.env_server.types import ConcurrencyConfig
    from pydantic import BaseModel, Field, model_validator
    from pydantic_core import PydanticCustomError
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"serving rlenv ids needs the optional OpenEnv extra ({err}); install it with pip install 'rlenv[serve]'"
    ) from None

from rlenv.env import TextGenEnv
from rlenv.registration import check_env_id
from rlenv.wrappers import TurnLevel


class RlenvAction(Action):
    """One token id (a token-level step) or the text of a whole turn; exactly one of the two."""

    token: int | None = Field(default=None, ge=0, description="next token id, in [0, vocab_size)")
    text: str | None = Field(default=None, description="the whole text of one turn (turn-level step)")

    @model_validator(mode="after")
    def _exactly_one(self) -> RlenvAction:
        if (self.token is None) == (self.text is None):
            # a PydanticCustomError carries no exception object, so the 422 body stays JSON
            raise PydanticCustomError("one_action", 'send exactly one of {"token": id} or {"text": "..."}')
        return self


class RlenvObservation(Observation):
    """The token-level observation (as lists), the text so far and this step's env reply."""

    input_ids: list[int] = Field(default_factory=list)
    attention_mask: list[int] = Field(default_factory=list)
    policy_mask: list[int] | None = Field(default=None, description="multi-turn ids: 1 where the policy wrote")
    text: str = ""
    reply: str = Field(default="", description="text the env appended on this step (multi-turn ids)")
    messages: list[dict[str, Any]] | None = Field(default=None, description="chat envs: the conversation so far")
    terminated: bool = False
    truncated: bool = False
    episode_id: str | None = None
    info: dict[str, Any] = Field(default_factory=dict)


class RlenvState(State):
    """Where one served episode stands."""

    env_id: str = ""
    done: bool = True
    prompt: str | None = None
    text: str = ""
    num_tokens: int = 0
    active_sessions: int = 0
    max_sessions: int = 1


class SessionError(Exception):
    """A request the server refuses; ``status`` is its HTTP status code."""

    status = 400
    code = "BAD_REQUEST"



def _text_env(env: gym.Env[Any, Any]) -> TextGenEnv:
    """The TextGenEnv under a served env's wrappers (every id rlenv serves is one)."""
    inner = env.unwrapped
    assert isinstance(inner, TextGenEnv), f"rlenv serves TextGenEnv ids, got {type(inner).__name__}"
    return inner

class UnknownEpisode(SessionError):
    status, code = 404, "UNKNOWN_EPISODE"


class EpisodeOver(SessionError):
    status, code = 409, "EPISODE_OVER"


class CapacityReached(SessionError):
    status, code = 503, "CAPACITY_REACHED"


@dataclass
class Episode:
    """One served episode: its env (token-level, wrapped for text actions) and bookkeeping."""

    id: str
    env: TurnLevel
    owner: object | None  # the WebSocket session's environment; None for an HTTP episode
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: bool = True
    step_count: int = 0
    last_used: float = field(default_factory=time.monotonic)
    last_obs: dict[str, np.ndarray] | None = None
    prompt: str | None = None


class Sessions:
    """The server's episodes (HTTP and WebSocket), a pool of idle envs and the capacity limit."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], max_sessions: int, idle_timeout_s: float = 300.0) -> None:
        self.env_id = check_env_id(env_id)
        self.env_kwargs = env_kwargs
        self.max_sessions = int(max_sessions)
        self.idle_timeout_s = idle_timeout_s
        self._episodes: dict[str, Episode] = {}
        self._pool: list[TurnLevel] = [self.make_env()]  # fail at start-up on a bad id or kwargs
        self._lock = threading.Lock()

    def make_env(self) -> TurnLevel:
        return TurnLevel(gym.make(self.env_id, disable_env_checker=True, **self.env_kwargs))

    @property
    def active(self) -> int:
        return len(self._episodes)

    def open(self, episode_id: str | None, owner: object | None) -> Episode:
        """The episode ``episode_id`` (made if new), holding a slot; CapacityReached if none is free."""
        with self._lock:
            if episode_id is not None and episode_id in self._episodes:
                return self._check_owner(self._episodes[episode_id], owner)
            if len(self._episodes) >= self.max_sessions:
                self._evict_one()
            env = self._pool.pop() if self._pool else None
            episode = Episode(episode_id or uuid.uuid4().hex, env, owner)  # type: ignore[arg-type]
            self._episodes[episode.id] = episode
        if episode.env is None:
            episode.env = self.make_env()  # outside the lock: loading a tokenizer takes a while
        return episode

    def _evict_one(self) -> None:
        now = time.monotonic()
        http = [e for e in self._episodes.values() if e.owner is None]
        evictable = [e for e in http if e.done or now - e.last_used > self.idle_timeout_s]
        if not evictable:
            frees = (f"; the next slot held by an untouched HTTP episode frees in "
                     f"{min(self.idle_timeout_s - (now - e.last_used) for e in http):.0f} s (--idle-timeout "
                     f"{self.idle_timeout_s:g})" if http else "")
            raise CapacityReached(
                f"the server holds {self.max_sessions} sessions (--max-sessions), all in use{frees}; end one "
                "(HTTP: POST /close with its episode_id; WebSocket: close the client), or restart the server with a "
                "larger --max-sessions"
            )
        oldest = min(evictable, key=lambda e: e.last_used)
        self._release_locked(oldest.id)

    @staticmethod
    def _check_owner(episode: Episode, owner: object | None) -> Episode:
        if episode.owner is not None and episode.owner is not owner:
            raise SessionError(f"episode_id {episode.id!r} belongs to another WebSocket session; use a new episode_id")
        return episode

    def get(self, episode_id: str | None, owner: object | None = None) -> Episode:
        if episode_id is None:
            raise UnknownEpisode(
                "no episode_id: over HTTP, send the episode_id that /reset returned "
                '({"action": {...}, "episode_id": "..."}), or use the WebSocket /ws for a session'
            )
        with self._lock:
            episode = self._episodes.get(episode_id)
        if episode is None:
            raise UnknownEpisode(
                f"unknown episode_id {episode_id!r} (never reset, closed, or evicted after it ended); call /reset first"
            )
        return self._check_owner(episode, owner)

    def release(self, episode_id: str) -> None:
        with self._lock:
            self._release_locked(episode_id)

    def _release_locked(self, episode_id: str) -> None:
        episode = self._episodes.pop(episode_id, None)
        if episode is not None and episode.env is not None:
            self._pool.append(episode.env)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


class RlenvEnvironment(Environment[RlenvAction, RlenvObservation, RlenvState]):
    """OpenEnv ``Environment`` over one rlenv episode at a time, held in the shared :class:`Sessions`."""

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self, sessions: Sessions) -> None:
        super().__init__()
        self.sessions = sessions
        self.episode_id: str | None = None
        self.connection_owned = False  # set by RlenvServer for WebSocket sessions

    def reset(self, seed: int | None = None, episode_id: str | None = None, prompt: str | None = None,
              **kwargs: Any) -> RlenvObservation:
        if kwargs:
            raise SessionError(f"unknown reset fields {sorted(kwargs)}; use seed, episode_id and prompt")
        owner = self if self.connection_owned else None
        if self.connection_owned and self.episode_id is not None:
            if episode_id is None:
                episode_id = self.episode_id  # a WebSocket session reuses its slot
            elif episode_id != self.episode_id:
                self.sessions.release(self.episode_id)  # one episode per WebSocket session
        episode = self.sessions.open(episode_id, owner)
        self.episode_id = episode.id
        with episode.lock:
            _, info = episode.env.reset(seed=seed, options=None if prompt is None else {"prompt": prompt})
            obs = episode.env.last_token_observation
            assert obs is not None  # set by reset
            episode.done, episode.step_count, episode.last_used = False, 0, time.monotonic()
            episode.last_obs, episode.prompt = obs, info.get("prompt")
            return self._observation(episode, obs, 0.0, False, False, info)

    def step(self, action: RlenvAction, timeout_s: float | None = None, episode_id: str | None = None,
             **kwargs: Any) -> RlenvObservation:
        if self.connection_owned and episode_id is None and self.episode_id is None:
            raise EpisodeOver('this WebSocket session has no episode yet; send {"type": "reset"} first')
        episode = self.sessions.get(episode_id or self.episode_id, self if self.connection_owned else None)
        with episode.lock:
            if episode.done:
                raise EpisodeOver(f"episode {episode.id!r} has ended; call reset to start the next one")
            try:
                if action.token is not None:
                    obs, reward, terminated, truncated, info = episode.env.env.step(np.int64(action.token))
                else:
                    _, reward, terminated, truncated, info = episode.env.step(action.text)  # type: ignore[arg-type]  # set: exactly one of token/text
                    obs = episode.env.last_token_observation
            except (ValueError, TypeError) as err:
                raise SessionError(f"bad action for {self.sessions.env_id}: {err}") from None
            episode.done = bool(terminated or truncated)
            episode.step_count += 1
            episode.last_used, episode.last_obs = time.monotonic(), obs
            return self._observation(episode, obs, float(reward), bool(terminated), bool(truncated), info)

    def _observation(self, episode: Episode, obs: dict[str, np.ndarray], reward: float, terminated: bool,
                     truncated: bool, info: dict[str, Any]) -> RlenvObservation:
        return RlenvObservation(
            input_ids=obs["input_ids"].tolist(), attention_mask=obs["attention_mask"].tolist(),
            policy_mask=obs["policy_mask"].tolist() if "policy_mask" in obs else None,
            text=episode.env._text(obs), reply=str(info.get("reply", "")) if "env_ids" in info and info["env_ids"] else "",
            messages=_jsonable(_text_env(episode.env).conversation()),
            terminated=terminated, truncated=truncated, episode_id=episode.id, info=_jsonable(info),
            done=terminated or truncated, reward=reward,
        )

    @property
    def state(self) -> RlenvState:
        base = {"env_id": self.sessions.env_id, "active_sessions": self.sessions.active,
                "max_sessions": self.sessions.max_sessions}
        if self.episode_id is None:
            return RlenvState(**base)
        return episode_state(self.sessions.get(self.episode_id, self if self.connection_owned else None), base)

    def close(self) -> None:
        if self.connection_owned and self.episode_id is not None:
            self.sessions.release(self.episode_id)
            self.episode_id = None


def episode_state(episode: Episode, base: dict[str, Any]) -> RlenvState:
    obs = episode.last_obs
    text = episode.env._text(obs) if obs is not None else ""
    prompt_columns = episode.env.unwrapped.setup.max_prompt_tokens  # type: ignore[attr-defined]  # every rlenv env has one
    num_tokens = int(obs["attention_mask"][prompt_columns:].sum()) if obs is not None else 0
    return RlenvState(episode_id=episode.id, step_count=episode.step_count, done=episode.done, prompt=episode.prompt,
                      text=text, num_tokens=num_tokens, **base)


class RlenvServer(HTTPEnvServer):
    """OpenEnv's server, marking WebSocket sessions' environments as owning their episode."""

    async def _create_session(self) -> tuple[str, Environment]:
        session_id, env = await super()._create_session()
        env.connection_owned = True  # released when the socket closes; HTTP episodes outlive requests
        return session_id, env


class CloseRequest(BaseModel):
    """``POST /close``: end the HTTP episode ``episode_id`` and free its slot."""

    episode_id: str = Field(description="the episode_id that /reset returned")


class SpecificWebSocketErrors:
    """ASGI middleware: a WebSocket ``VALIDATION_ERROR`` says what is wrong, as the HTTP 422 does.

    OpenEnv's WebSocket handler answers a malformed message with the bare text "Invalid message" and
    puts pydantic's errors in a side field that its client does not print; this rewrites the message
    from those errors (``data.token: Input should be greater than or equal to 0``), keeping the code.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return

        async def send_specific(message: dict[str, Any]) -> None:
            if message.get("type") == "websocket.send" and message.get("text"):
                message = {**message, "text": specific_validation_error(message["text"])}
            await send(message)

        await self.app(scope, receive, send_specific)


def specific_validation_error(text: str) -> str:
    """``text`` (one WebSocket frame) with a VALIDATION_ERROR's message built from its errors."""
    if '"VALIDATION_ERROR"' not in text:
        return text
    frame = json.loads(text)
    data = frame.get("data") or {}
    errors = data.get("errors") or []
    if frame.get("type") != "error" or not errors:
        return text
    parts = []
    for error in errors:
        where = ".".join(str(x) for x in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', '')}" if where else str(error.get("msg", "")))
    data["message"] = "invalid message: " + "; ".join(parts)
    return json.dumps(frame)


def create_rlenv_app(env_id: str, max_sessions: int = 8, env_kwargs: dict[str, Any] | None = None,
                     idle_timeout: float = 300.0) -> FastAPI:
    """The FastAPI app serving ``env_id``: every route of OpenEnv's server, plus ``/state/{episode_id}``
    and ``/close``. ``idle_timeout``: seconds after which an untouched episode may lose its slot."""
    if int(max_sessions) < 1:
        raise ValueError(f"max_sessions must be >= 1, got {max_sessions}")
    if not idle_timeout > 0:
        raise ValueError(f"idle_timeout must be > 0 seconds, got {idle_timeout}")
    sessions = Sessions(env_id, dict(env_kwargs or {}), max_sessions, idle_timeout_s=float(idle_timeout))
    factory: Callable[[], RlenvEnvironment] = lambda: RlenvEnvironment(sessions)  # noqa: E731
    app = FastAPI(title=f"rlenv {env_id} (OpenEnv)")
    app.add_middleware(SpecificWebSocketErrors)
    concurrency = ConcurrencyConfig(max_concurrent_envs=int(max_sessions), session_timeout=float(idle_timeout))
    server = RlenvServer(env=factory, action_cls=RlenvAction, observation_cls=RlenvObservation, state_cls=RlenvState,
                         concurrency_config=concurrency, env_name=env_id.replace("/", "_"))

    @app.exception_handler(SessionError)
    async def _session_error(request: Request, err: SessionError) -> JSONResponse:
        return JSONResponse(status_code=err.status, content={"detail": str(err), "code": err.code})

    @app.get("/state/{episode_id}", response_model=RlenvState, tags=["State Management"])
    def _episode_state(episode_id: str) -> RlenvState:
        return episode_state(sessions.get(episode_id), {"env_id": sessions.env_id, "active_sessions": sessions.active,
                                                         "max_sessions": sessions.max_sessions})

    @app.post("/close", tags=["Environment Control"])
    def _close(request: CloseRequest) -> dict[str, Any]:
        episode = sessions.get(request.episode_id)
        if episode.owner is not None:
            raise SessionError(f"episode_id {episode.id!r} belongs to a WebSocket session; close it with the "
                               'session\'s {"type": "close"} message')
        sessions.release(episode.id)
        return {"closed": episode.id, "active_sessions": sessions.active, "max_sessions": sessions.max_sessions}

    server.register_routes(app)
    app.state.sessions = sessions
    return app


def serve(env_id: str, host: str = "127.0.0.1", port: int = 8000, max_sessions: int = 8,
          env_kwargs: dict[str, Any] | None = None, idle_timeout: float = 300.0) -> None:
    """Run the server until interrupted (what ``rlenv serve`` calls)."""
    import uvicorn

    app = create_rlenv_app(env_id, max_sessions, env_kwargs, idle_timeout)
    uvicorn.run(app, host=host, port=port, log_level="warning")
