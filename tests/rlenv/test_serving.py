"""`rlenv serve` as a real OpenEnv server (uvicorn subprocess), driven by OpenEnv's own client."""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("openenv.core", reason="needs the optional extra: pip install 'rlenv[serve]'")
import httpx  # noqa: E402
from openenv.core import GenericEnvClient  # noqa: E402

import rlenv  # noqa: E402,F401
from rlenv.multiturn import register_responder_env  # noqa: E402
from rlenv.remote import remote_openenv  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ENV_ID = "rlenv/GuessNumber-v0"


# Start-up is mostly imports, which a loaded machine can stretch to minutes: readiness is the server's
# own /health answer, and this deadline is only a safety net against a hung start-up, never the test.
STARTUP_SAFETY_NET_S = 900


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(env_id: str, max_sessions: int):
    """`rlenv serve` on a free port; its stderr goes to a file (a pipe nobody reads could fill and
    block the server), kept as ``proc.log_path`` for the error messages."""
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="rlenv-serve-", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agents.cli",
            "serve",
            env_id,
            "--port",
            str(port),
            "--max-sessions",
            str(max_sessions),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    log.close()
    proc.log_path = Path(log.name)
    return proc, f"http://127.0.0.1:{port}"


def server_log(proc) -> str:
    return proc.log_path.read_text(errors="replace")[-3000:]


def stop(proc) -> None:
    proc.kill()
    proc.wait()
    proc.log_path.unlink(missing_ok=True)


def wait_healthy(proc, url: str) -> None:
    """Return once the server answers /health as healthy; raise at once if it exits first."""
    deadline = time.monotonic() + STARTUP_SAFETY_NET_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"`rlenv serve` exited with code {proc.returncode} before it was healthy:\n{server_log(proc)}"
            )
        try:
            if httpx.get(url + "/health", timeout=10).json().get("status") == "healthy":
                return
        except (httpx.HTTPError, ValueError):
            pass  # not listening yet, or busy
        if time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(
                f"`rlenv serve` did not answer /health within the {STARTUP_SAFETY_NET_S} s safety net "
                f"(start-up normally takes seconds: is it hung?):\n{server_log(proc)}"
            )
        time.sleep(0.2)


def until_healthy(proc, url: str, env_id: str, max_sessions: int, attempts: int = 3):
    """Wait for a launched server; relaunch it on another port if its free port was taken before it bound."""
    for attempt in range(attempts):
        try:
            wait_healthy(proc, url)
            return proc, url
        except RuntimeError:
            in_use = "address already in use" in server_log(proc).lower()
            stop(proc)
            if not in_use or attempt == attempts - 1:
                raise
            proc, url = launch(env_id, max_sessions)


@pytest.fixture(scope="module")
def servers():
    """Two servers started side by side (start-up is mostly imports): 10 sessions, and 1 session."""
    launched = [launch(ENV_ID, max_sessions=10), launch(ENV_ID, max_sessions=1)]
    try:
        for i, n in enumerate((10, 1)):
            launched[i] = until_healthy(*launched[i], ENV_ID, n)
        yield {"main": launched[0][1], "small": launched[1]}
    finally:
        for proc, _ in launched:
            stop(proc)


@pytest.fixture(scope="module")
def server(servers):
    return servers["main"]


def actions_for(seed: int) -> list[int]:
    tok = gym.make(ENV_ID).unwrapped.tokenizer
    rng = np.random.default_rng(seed)
    text = "".join(f"{g}\n" for g in rng.integers(1, 21, size=12))
    return tok(text, add_special_tokens=False)["input_ids"]


def local_episode(seed: int, actions: list[int]):
    env = gym.make(ENV_ID)
    obs, _ = env.reset(seed=seed)
    steps = [(obs["input_ids"].tolist(), 0.0, False)]
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        steps.append((obs["input_ids"].tolist(), r, term or trunc))
        if term or trunc:
            break
    return steps


def ws_episode(url: str, seed: int, actions: list[int]):
    with GenericEnvClient(base_url=url).sync() as client:
        res = client.reset(seed=seed)
        steps = [(res.observation["input_ids"], res.reward, res.done)]
        for a in actions:
            res = client.step({"token": int(a)})
            steps.append((res.observation["input_ids"], res.reward, res.done))
            if res.done:
                break
        state = client.state()
    return steps, state


def test_websocket_episode_matches_the_local_env(server):
    acts = actions_for(0)
    steps, state = ws_episode(server, 11, acts)
    assert steps == local_episode(11, acts)
    assert state["done"] and state["step_count"] == len(steps) - 1 and state["env_id"] == ENV_ID


def test_http_episode_matches_the_local_env_and_text_actions(server):
    acts = actions_for(1)
    local = local_episode(5, acts)
    with httpx.Client(base_url=server) as http:
        res = http.post("/reset", json={"seed": 5}).json()
        eid = res["observation"]["episode_id"]
        steps = [(res["observation"]["input_ids"], res["reward"], res["done"])]
        for a in acts[: len(local) - 1]:
            res = http.post("/step", json={"action": {"token": a}, "episode_id": eid}).json()
            steps.append((res["observation"]["input_ids"], res["reward"], res["done"]))
        assert steps == local
        assert http.get(f"/state/{eid}").json()["done"] is True
        # turn-level actions: a whole turn of text per step, the env's reply in the observation
        res = http.post("/reset", json={"seed": 5, "episode_id": "text-episode"}).json()
        res = http.post("/step", json={"action": {"text": "0"}, "episode_id": "text-episode"}).json()
        assert res["observation"]["reply"] == "\nhigher\nI guess " and res["reward"] == pytest.approx(-0.1)
        assert res["observation"]["text"].endswith("0\nhigher\nI guess ")
        assert res["observation"]["policy_mask"].count(1) == 1  # '0': a turn is one token


def test_bad_input_gets_errors_and_the_server_keeps_serving(server):
    with httpx.Client(base_url=server) as http:
        eid = http.post("/reset", json={"seed": 0}).json()["observation"]["episode_id"]
        bad = [
            ({"action": {"token": 1}, "episode_id": "nope"}, 404, "unknown episode_id"),
            ({"action": {"token": 1}}, 404, "send the episode_id"),
            ({"action": {"token": 10**6}, "episode_id": eid}, 400, "outside the vocabulary"),
            ({"action": {"token": -1}, "episode_id": eid}, 422, "greater than or equal to 0"),
            ({"action": {"token": 1, "text": "2"}, "episode_id": eid}, 422, "exactly one"),
            ({"action": {"tokens": [1]}, "episode_id": eid}, 422, "Extra inputs"),
        ]
        for body, status, message in bad:
            res = http.post("/step", json=body)
            assert res.status_code == status and message in res.text, (body, res.text)
        # the episode survived the bad requests; finish it, then a step after the end is refused
        done = False
        for a in actions_for(2):
            done = http.post("/step", json={"action": {"token": a}, "episode_id": eid}).json()["done"]
            if done:
                break
        assert done
        res = http.post("/step", json={"action": {"token": 5}, "episode_id": eid})
        assert res.status_code == 409 and "has ended" in res.text
    with GenericEnvClient(base_url=server).sync() as client:
        ws_episode_id = client.reset(seed=0).observation["episode_id"]
        # an HTTP request cannot step (or reset) an episode that a WebSocket session owns
        res = httpx.post(server + "/step", json={"action": {"token": 5}, "episode_id": ws_episode_id})
        assert res.status_code == 400 and "belongs to another WebSocket session" in res.text
        with pytest.raises(RuntimeError, match="outside the vocabulary"):
            client.step({"token": 10**6})
        with pytest.raises(RuntimeError, match="VALIDATION_ERROR"):
            client.step({"word": "x"})
        # the session still answers
        assert client.step({"text": "0"}).observation["reply"] == "\nhigher\nI guess "
    assert httpx.get(server + "/health").json()["status"] == "healthy"


def test_eight_concurrent_sessions_do_not_cross_talk(server):
    results: dict[int, object] = {}

    def run(k: int) -> None:
        results[k] = ws_episode(server, 100 + k, actions_for(10 + k))[0]

    threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(results) == list(range(8))
    for k in range(8):
        assert results[k] == local_episode(100 + k, actions_for(10 + k)), k


def test_remote_openenv_as_responder_matches_the_local_game(server):
    kwargs = remote_openenv(server)
    register_responder_env("test/RemoteGuess-v0", **kwargs)
    remote = gym.make(
        "test/RemoteGuess-v0", max_prompt_tokens=32, max_new_tokens=33, max_turn_tokens=1
    )  # as ENV_ID
    _, info = remote.reset(seed=4)
    # the remote episode was reset with the first integer the env's RNG drew
    remote_seed = int(np.random.default_rng(4).integers(2**31))
    local = gym.make(ENV_ID)
    _, local_info = local.reset(seed=remote_seed)
    assert info["prompt"] == local_info["prompt"]
    for a in actions_for(3):
        o1, r1, t1, u1, i1 = remote.step(a)
        o2, r2, t2, u2, i2 = local.step(a)
        np.testing.assert_array_equal(o1["input_ids"], o2["input_ids"])
        np.testing.assert_array_equal(o1["policy_mask"], o2["policy_mask"])
        # a remote env reports only `done`: the episode ends on the same step, as `terminated`
        assert r1 == pytest.approx(r2) and (t1 or u1) == (t2 or u2)
        if t1 or u1:
            break
    assert t1 or u1


def test_capacity_limit_and_killed_server(servers):
    proc, url = servers["small"]
    try:
        with GenericEnvClient(base_url=url).sync() as first:
            first.reset(seed=0)
            with (
                GenericEnvClient(base_url=url).sync() as second,
                pytest.raises(RuntimeError, match="CAPACITY_REACHED"),
            ):
                second.reset(seed=0)
            res = httpx.post(url + "/reset", json={"seed": 0})
            assert res.status_code == 503 and "--max-sessions" in res.text
            first.step({"text": "1"})  # the admitted session keeps working
        kwargs = remote_openenv(url)
        register_responder_env("test/RemoteKilled-v0", **kwargs)
        remote = gym.make("test/RemoteKilled-v0")
        remote.reset(seed=0)
    finally:
        stop(proc)
    with pytest.raises(ConnectionError, match=f"OpenEnv server at {url}"):
        for a in actions_for(0):
            remote.step(a)
    with pytest.raises(ConnectionError, match="Failed to connect|did not answer"):
        GenericEnvClient(base_url=url).sync().reset()


def test_serve_command_refuses_bad_arguments(capsys):
    from agents.cli import main

    assert main(["serve", "rlenv/GuesNumber-v0"]) == 2
    assert "did you mean 'rlenv/GuessNumber-v0'" in capsys.readouterr().err
    assert main(["serve", ENV_ID, "--max-sessions", "0"]) == 2
    assert "--max-sessions must be >= 1" in capsys.readouterr().err
