"""Token-level steps/s of ``rlenv serve`` over HTTP and over WebSocket, for 1 and for 8 sessions.

Starts the real server (``python -m agents.cli serve ENV``, uvicorn) in a subprocess on a free
port, then drives it with OpenEnv's own ``GenericEnvClient`` (WebSocket ``/ws``) and with plain
HTTP (``httpx``: ``POST /step`` with the ``episode_id`` from ``/reset``). Every session sends
random token ids (the env's whole vocabulary) and resets when its episode ends; 8 sessions run in
8 client threads at once. Reported: total steps/s across sessions (resets not counted), and the
mean latency of one step. Client and server share this machine's CPUs.

    python benchmarks/openenv_serving.py [--env rlenv/GuessNumber-v0] [--steps 400] [--sessions 1 8]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from openenv.core import GenericEnvClient

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env_id: str, max_sessions: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "agents.cli", "serve", env_id, "--port", str(port),
                             "--max-sessions", str(max_sessions)], cwd=ROOT, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start within 60 s")


def ws_session(url: str, steps: int, vocab: int, seed: int) -> int:
    rng = np.random.default_rng(seed)
    with GenericEnvClient(base_url=url).sync() as client:
        client.reset(seed=seed)
        for a in rng.integers(0, vocab, size=steps):
            if client.step({"token": int(a)}).done:
                client.reset()
    return steps


def http_session(url: str, steps: int, vocab: int, seed: int) -> int:
    rng = np.random.default_rng(seed)
    with httpx.Client(base_url=url) as http:
        episode_id = http.post("/reset", json={"seed": seed}).json()["observation"]["episode_id"]
        for a in rng.integers(0, vocab, size=steps):
            res = http.post("/step", json={"action": {"token": int(a)}, "episode_id": episode_id}).json()
            if res["done"]:
                http.post("/reset", json={"episode_id": episode_id})
    return steps


def measure(fn, url: str, sessions: int, steps: int, vocab: int) -> dict[str, float]:
    threads = [threading.Thread(target=fn, args=(url, steps, vocab, k)) for k in range(sessions)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    total = sessions * steps
    return {"steps_per_s": round(total / elapsed, 1), "step_latency_ms": round(1000 * elapsed * sessions / total, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="rlenv/GuessNumber-v0")
    parser.add_argument("--steps", type=int, default=400, help="token steps per session")
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    vocab = _vocab(args.env)
    proc, url = start_server(args.env, max_sessions=64)  # HTTP episodes keep their slots until they end
    try:
        for sessions in args.sessions:
            for transport, fn in (("websocket", ws_session), ("http", http_session)):
                measure(fn, url, sessions, 10, vocab)  # warm-up: one pooled env per session, connections
                result = measure(fn, url, sessions, args.steps, vocab)
                print(json.dumps({"env": args.env, "transport": transport, "sessions": sessions,
                                  "steps_per_session": args.steps, **result}), flush=True)
    finally:
        proc.kill()
        proc.wait()


def _vocab(env_id: str) -> int:
    import gymnasium as gym

    import rlenv  # noqa: F401

    return int(gym.make(env_id).action_space.n)


if __name__ == "__main__":
    main()
