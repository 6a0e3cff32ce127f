"""Serving sessions in process (FastAPI's TestClient, no port, no sleep): HTTP episodes can be ended, an
abandoned one holds its slot for at most --idle-timeout (time is moved by ageing the episodes, never
waited for), and WebSocket errors say what is wrong, as HTTP's do."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("openenv.core", reason="needs the optional extra: pip install 'rlenv[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

from rlenv.serving import create_rlenv_app, specific_validation_error  # noqa: E402

ENV_ID = "rlenv/GuessNumber-v0"
IDLE = 60.0


@pytest.fixture
def app():
    return create_rlenv_app(ENV_ID, max_sessions=2, idle_timeout=IDLE)


@pytest.fixture
def client(app):
    with TestClient(app) as client:  # runs the app's start-up (OpenEnv's session reaper) and shut-down
        yield client


def http_reset(client) -> str:
    res = client.post("/reset", json={"seed": 0})
    assert res.status_code == 200, res.text
    return res.json()["observation"]["episode_id"]


def ws_send(ws, kind: str, data: dict | None = None) -> dict:
    ws.send_text(json.dumps({"type": kind, "data": data or {}}))
    return json.loads(ws.receive_text())


def age(app, seconds: float) -> None:
    """Every HTTP episode was last touched ``seconds`` earlier (what waiting that long would do)."""
    for episode in app.state.sessions._episodes.values():
        episode.last_used -= seconds


def test_an_http_episode_is_ended_with_close(client) -> None:
    eid = http_reset(client)
    res = client.post("/close", json={"episode_id": eid})
    assert res.status_code == 200 and res.json()["closed"] == eid and res.json()["active_sessions"] == 0
    res = client.post("/step", json={"action": {"token": 5}, "episode_id": eid})
    assert res.status_code == 404 and "unknown episode_id" in res.text
    assert client.post("/close", json={"episode_id": eid}).status_code == 404
    assert client.post("/close", json={}).status_code == 422


def test_closing_frees_the_slot_at_once(client) -> None:
    first, _ = http_reset(client), http_reset(client)
    assert client.post("/reset", json={"seed": 1}).status_code == 503  # both slots held, none idle yet
    client.post("/close", json={"episode_id": first})
    assert client.post("/reset", json={"seed": 1}).status_code == 200


def test_abandoned_http_episodes_lock_out_a_websocket_for_at_most_the_idle_timeout(app, client) -> None:
    abandoned = [http_reset(client), http_reset(client)]  # reset and never stepped or closed
    with client.websocket_connect("/ws") as ws:
        refused = ws_send(ws, "reset", {"seed": 3})
        assert refused["type"] == "error" and "all in use" in refused["data"]["message"]
        assert f"frees in {IDLE:.0f} s (--idle-timeout {IDLE:g})" in refused["data"]["message"]
        age(app, IDLE + 1)
        answered = ws_send(ws, "reset", {"seed": 3})
        assert answered["type"] == "observation", answered
    # the slot was taken from the longest-idle abandoned episode, which is now gone
    gone = [
        client.post("/step", json={"action": {"token": 5}, "episode_id": e}).status_code for e in abandoned
    ]
    assert sorted(gone) == [200, 404]


def test_an_active_http_episode_keeps_its_slot(app, client) -> None:
    eid = http_reset(client)
    http_reset(client)
    age(app, IDLE + 1)
    assert (
        client.post("/step", json={"action": {"token": 5}, "episode_id": eid}).status_code == 200
    )  # touched now
    assert client.post("/reset", json={"seed": 2}).status_code == 200  # took the other, idle one
    assert client.post("/step", json={"action": {"token": 5}, "episode_id": eid}).status_code == 200


def test_websocket_validation_errors_carry_the_specific_message(client) -> None:
    with client.websocket_connect("/ws") as ws:
        assert ws_send(ws, "reset", {"seed": 0})["type"] == "observation"
        negative = ws_send(ws, "step", {"token": -1})["data"]
        assert negative["code"] == "VALIDATION_ERROR"
        assert "token: Input should be greater than or equal to 0" in negative["message"]
        both = ws_send(ws, "step", {"token": 1, "text": "2"})["data"]
        assert 'send exactly one of {"token": id} or {"text": "..."}' in both["message"]
        assert ws_send(ws, "step", {"text": "0"})["type"] == "observation"  # the session still answers


def test_a_websocket_step_before_reset_names_the_reset_message(client) -> None:
    with client.websocket_connect("/ws") as ws:
        answer = ws_send(ws, "step", {"token": 5})
        assert answer["type"] == "error"
        assert 'no episode yet; send {"type": "reset"} first' in answer["data"]["message"]
        assert "episode_id that /reset returned" not in answer["data"]["message"]  # the HTTP-only advice


def test_other_frames_pass_through_unchanged() -> None:
    frames = [
        '{"type": "observation", "data": {}}',
        '{"type": "error", "data": {"code": "EXECUTION_ERROR"}}',
        '{"type": "error", "data": {"code": "VALIDATION_ERROR", "message": "Invalid message"}}',
    ]
    assert [specific_validation_error(f) for f in frames] == frames


def test_the_idle_timeout_is_configurable_and_checked() -> None:
    assert create_rlenv_app(ENV_ID, idle_timeout=7).state.sessions.idle_timeout_s == 7.0
    with pytest.raises(ValueError, match="idle_timeout must be > 0"):
        create_rlenv_app(ENV_ID, idle_timeout=0)


def test_serve_refuses_a_bad_idle_timeout(capsys) -> None:
    from agents.cli import main

    assert main(["serve", ENV_ID, "--idle-timeout", "0"]) == 2
    assert "--idle-timeout must be > 0" in capsys.readouterr().err
