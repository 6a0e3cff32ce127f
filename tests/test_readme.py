"""The README's code runs as written: every python block, and the RM -> policy pipeline's commands.

Training budgets are shrunk by exact text substitutions listed here; each must match the README, so
a README edit that changes a snippet fails this test until the substitution is updated with it.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"

# marker substring of a block -> (README text, what the test runs instead): budgets only
SHRINK: dict[str, list[tuple[str, str]]] = {
    'PPO("MultiInputPolicy", env, n_steps=512': [("model.learn(60_000)", "model.learn(512)"),
                                                ("n_eval_episodes=300", "n_eval_episodes=5")],
    "make_vec_env(": [("seed=0).learn(10_000)", "n_steps=64, seed=0).learn(256)")],
    'TrainConfig(algo="grpo"': [("steps=50", "steps=1")],
    "LMActorCriticPolicy": [("n_envs=16", "n_envs=2"), ("batch_size=256", "batch_size=32"),
                            ("model.learn(20_000)", "model.learn(32)")],
    "GRPOTrainer(": [("n=512", "n=16")],
}


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def shrunk(code: str) -> str:
    for marker, substitutions in SHRINK.items():
        if marker in code:
            for old, new in substitutions:
                assert old in code, f"README snippet changed: {old!r} is gone; update tests/test_readme.py"
                code = code.replace(old, new)
    return code


@pytest.fixture
def in_tmp_dir(tmp_path, monkeypatch):
    import torch

    monkeypatch.chdir(tmp_path)  # snippets write runs/... relative to the working directory
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path
    torch.set_num_threads(before)


def test_every_shrink_rule_matches_a_block():
    blocks = python_blocks()
    assert len(blocks) >= 6
    for marker in SHRINK:
        assert any(marker in b for b in blocks), f"no README python block contains {marker!r}"


SERVE_COMMAND = "python -m agents.cli serve rlenv/GuessNumber-v0 --port 8011 --max-sessions 8"


@pytest.fixture(scope="module")
def readme_server():
    """The server the README's serving section starts (its own command, on its own port)."""
    import subprocess
    import sys
    import time
    import urllib.request

    assert SERVE_COMMAND in README.read_text(), "the README's serve command changed; update tests/test_readme.py"
    argv = [sys.executable, *shlex.split(SERVE_COMMAND)[1:]]
    proc = subprocess.Popen(argv, cwd=README.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen("http://127.0.0.1:8011/health", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"the README's server did not start: {proc.stderr.read().decode()[-2000:]}")
                time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("index", range(len(python_blocks())),
                         ids=[b.strip().splitlines()[-1][:40] for b in python_blocks()])
def test_python_block_runs_as_written(index, in_tmp_dir, request):
    code = shrunk(python_blocks()[index])
    if "from trl import" in code:
        pytest.importorskip("trl")
    if "127.0.0.1:8011" in code:  # the serving section's clients talk to the server it starts
        request.getfixturevalue("readme_server")
    exec(compile(code, f"README.md python block {index}", "exec"), {"__name__": "__readme__"})


def pipeline_commands() -> list[str]:
    text = README.read_text()
    block = re.search(r"<!-- readme-test: pipeline -->\n```bash\n(.*?)```", text, flags=re.S)
    assert block, "the README lost its RM -> policy pipeline block"
    return [line for line in block.group(1).splitlines() if line.strip()]


# per command: flags appended to keep the run tiny, and flag pairs replaced
TINY = {
    "rm": (["--epochs", "1"], {}),
    "train": (["--batch-size", "4", "--max-new-tokens", "4", "--device", "cpu"], {"--steps": ("--steps", "1")}),
    "eval": (["--episodes", "4", "--max-new-tokens", "4", "--device", "cpu"], {}),
}


def test_rm_to_policy_pipeline_runs_as_written(in_tmp_dir, capsys):
    import json

    from agents.cli import main

    commands = pipeline_commands()
    assert [c.split()[:2] for c in commands] == [["python", "-c"], ["rlenv", "rm"], ["rlenv", "train"],
                                                 ["rlenv", "eval"]]
    for line in commands:
        argv = shlex.split(line, comments=True)
        if argv[0] == "python":
            code = argv[2]
            assert "preference_pairs(2000)" in code
            exec(code.replace("preference_pairs(2000)", "preference_pairs(64)"), {})
            continue
        extra, replace = TINY[argv[1]]
        args = argv[1:]
        for flag, (new_flag, new_value) in replace.items():
            i = args.index(flag)
            args[i : i + 2] = [new_flag, new_value]
        assert main([*args, *extra]) == 0, line
    config = json.loads(next((in_tmp_dir / "runs" / "ppo-rm").glob("checkpoints/*/train_config.json")).read_text())
    assert "reward_model=learned" in config["env_args"]  # the policy trained against the learned RM
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["model"].endswith("step_000001") and summary["episodes"] == 4
