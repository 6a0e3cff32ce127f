"""The README's and the documentation site's code runs as written.

Which blocks run, on every page (README.md and every docs/ page but the generated API reference):

- every ```python block runs, in a temporary working directory on one torch thread; training
  budgets are shrunk by the exact text substitutions listed in ``SHRINK``, and each must match its
  page, so an edit that changes a snippet fails this test until the substitution is updated with it;
- the ```bash block marked ``<!-- readme-test: pipeline -->`` (the RM -> policy pipeline) runs
  command by command, with the flags in ``TINY`` appended to keep it to seconds;
- every other ```bash block is *checked, not run*: it holds installs, multi-minute trainings,
  grids, ``accelerate launch`` and servers, as the README's always did. Each of its commands must
  still be valid: an ``rlenv``/``python -m agents.cli`` command is parsed by the real command line
  (its flags and the config checks run; the work does not), ``python -m MODULE`` must name an
  importable module, ``python FILE`` an existing file, ``python -c CODE`` must compile; installs,
  the test runner, ruff, mypy, pre-commit, mkdocs and curl are left alone. A command of any other kind fails, so a new
  kind of command needs a rule here. The serving page's server is started for real by the python
  blocks that talk to it (``readme_server``).
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# every page a reader runs code from; the API reference has no code blocks of its own
PAGES = [
    README,
    *sorted(p for p in (ROOT / "docs").rglob("*.md") if "api" not in p.relative_to(ROOT / "docs").parts),
]

# marker substring of a block -> (page text, what the test runs instead): budgets only
SHRINK: dict[str, list[tuple[str, str]]] = {
    'PPO("MultiInputPolicy", env, n_steps=512': [
        ("model.learn(60_000)", "model.learn(512)"),
        ("n_eval_episodes=300", "n_eval_episodes=5"),
    ],
    "make_vec_env(": [("seed=0).learn(10_000)", "n_steps=64, seed=0).learn(256)")],
    'TrainConfig(algo="grpo", env="rlenv/Arithmetic-v0"': [("steps=50", "steps=1")],
    "model.learn(20_000)": [
        ("n_envs=16", "n_envs=2"),
        ("batch_size=256", "batch_size=32"),
        ("model.learn(20_000)", "model.learn(32)"),
    ],
    "GRPOTrainer(": [("n=512", "n=16")],
}


def blocks(language: str) -> list[tuple[str, str]]:
    """(page name, code) of every ``language`` block on every page, in page order."""
    found = []
    for page in PAGES:
        for code in re.findall(rf"```{language}\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S):
            found.append((str(page.relative_to(ROOT)), code))
    return found


def python_blocks() -> list[str]:
    return [code for _, code in blocks("python")]


def shrunk(code: str) -> str:
    for marker, substitutions in SHRINK.items():
        if marker in code:
            for old, new in substitutions:
                assert old in code, f"snippet changed: {old!r} is gone; update tests/test_readme.py"
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
    code = python_blocks()
    assert len(code) >= 6
    for marker in SHRINK:
        assert any(marker in b for b in code), f"no python block on any page contains {marker!r}"


def test_the_readme_test_command_is_the_one_ci_runs():
    """The README's two commands are the contract with CI: .ci/run runs the second one verbatim."""
    test_command = 'pip install torch==2.13.0 && pip install -e ".[dev]" && python -m pytest -q'
    assert test_command in README.read_text(encoding="utf-8")
    assert test_command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_readme_links_into_the_site_resolve():
    """The front door's relative links (docs/… pages, figures) point at files that exist, so they
    work on GitHub as well as in the site."""
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text(encoding="utf-8"))
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert local, "the README links nowhere"
    assert [t for t in local if not (ROOT / t).is_file()] == []


SERVE_COMMAND = "python -m agents.cli serve rlenv/GuessNumber-v0 --port 8011 --max-sessions 8"


@pytest.fixture(scope="module")
def readme_server():
    """The server the serving page starts (its own command, on its own port)."""
    import subprocess
    import sys
    import time
    import urllib.request

    assert any(SERVE_COMMAND in code for _, code in blocks("bash")), (
        "the serve command changed; update this test"
    )
    argv = [sys.executable, *shlex.split(SERVE_COMMAND)[1:]]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen("http://127.0.0.1:8011/health", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"the documented server did not start: {proc.stderr.read().decode()[-2000:]}")
                time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stderr.close()


def _block_id(page: str, code: str) -> str:
    return f"{page}:{code.strip().splitlines()[-1][:40]}"


@pytest.mark.parametrize("index", range(len(python_blocks())), ids=[_block_id(*b) for b in blocks("python")])
def test_python_block_runs_as_written(index, in_tmp_dir, request):
    page, code = blocks("python")[index]
    code = shrunk(code)
    if "from trl import" in code:
        pytest.importorskip("trl")
    if "127.0.0.1:8011" in code:  # the serving page's clients talk to the server it starts
        request.getfixturevalue("readme_server")
    exec(compile(code, f"{page} python block", "exec"), {"__name__": "__readme__"})


def pipeline_commands() -> list[str]:
    found = [
        block
        for page in PAGES
        for block in re.findall(
            r"<!-- readme-test: pipeline -->\n```bash\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S
        )
    ]
    assert len(found) == 1, "exactly one page must hold the RM -> policy pipeline block"
    return [line for line in found[0].splitlines() if line.strip()]


# per command: flags appended to keep the run tiny, and flag pairs replaced
TINY = {
    "rm": (["--epochs", "1"], {}),
    "train": (
        ["--batch-size", "4", "--max-new-tokens", "4", "--device", "cpu"],
        {"--steps": ("--steps", "1")},
    ),
    "eval": (["--episodes", "4", "--max-new-tokens", "4", "--device", "cpu"], {}),
}


def test_rm_to_policy_pipeline_runs_as_written(in_tmp_dir, capsys):
    import json

    from agents.cli import main

    commands = pipeline_commands()
    assert [c.split()[:2] for c in commands] == [
        ["python", "-c"],
        ["rlenv", "rm"],
        ["rlenv", "train"],
        ["rlenv", "eval"],
    ]
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
    config = json.loads(
        next((in_tmp_dir / "runs" / "ppo-rm").glob("checkpoints/*/train_config.json")).read_text()
    )
    assert "reward_model=learned" in config["env_args"]  # the policy trained against the learned RM
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["model"].endswith("step_000001") and summary["episodes"] == 4


# ---- bash blocks that are checked, not run ---------------------------------------------------------

LEFT_ALONE = (
    "pip",
    "ruff",
    "curl",
    "mkdocs",
    "mypy",
    "pre-commit",
    "apt-get",
)  # installs, other tools' commands


def checked_bash_commands() -> list[tuple[str, list[str]]]:
    """(page, argv) of every command in every bash block but the pipeline one; lines joined at a
    trailing backslash, split at ``&&``, comments dropped."""
    commands = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        text = re.sub(r"<!-- readme-test: pipeline -->\n```bash\n.*?```", "", text, flags=re.S)
        for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                argv = shlex.split(line, comments=True)
                while argv:
                    cut = argv.index("&&") if "&&" in argv else len(argv)
                    commands.append((str(page.relative_to(ROOT)), argv[:cut]))
                    argv = argv[cut + 1 :]
    return commands


def without_environment(argv: list[str]) -> list[str]:
    """The command without its leading ``NAME=value`` environment assignments (``OMP_NUM_THREADS=1 rlenv
    train ...`` is checked as ``rlenv train ...``)."""
    while argv and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", argv[0]):
        argv = argv[1:]
    return argv


# Pages whose commands name files the page's own snippets write first (a reward-function file, a
# config file, a run directory): the checkout has none of them, so the commands cannot be parsed
# here. tests/agents/test_own_things_cli.py runs the same commands for real through the CLI, in a
# temporary directory where those files exist.
RUN_ELSEWHERE = {"docs/your-own-things.md": "tests/agents/test_own_things_cli.py"}


def cli_args(argv: list[str]) -> list[str] | None:
    """The ``rlenv`` arguments of a command that runs the CLI, else None."""
    if argv[0] == "rlenv":
        return argv[1:]
    if "-m" in argv and argv[argv.index("-m") + 1] == "agents.cli":  # python -m / accelerate launch -m
        return argv[argv.index("-m") + 2 :]
    return None


@pytest.fixture
def parse_only(monkeypatch):
    """The real ``rlenv`` command line with every command's work replaced by recording what it parsed:
    flags, ids and config checks run, nothing trains, serves or reads a grid's results."""
    import tyro

    import agents.benchmarking.bench
    import agents.cli

    parsed: list[object] = []
    for name in ("cmd_train", "cmd_eval", "cmd_envs", "cmd_serve", "cmd_sample"):
        monkeypatch.setattr(agents.cli, name, parsed.append)

    def rm_train(argv):
        from reward_models.training import RMTrainConfig

        parsed.append(tyro.cli(RMTrainConfig, args=list(argv), prog="rlenv rm train"))

    monkeypatch.setattr(agents.cli, "cmd_rm_train", rm_train)
    monkeypatch.setattr(agents.benchmarking.bench, "main", lambda bench, argv: parsed.append(bench))
    return parsed


@pytest.mark.parametrize(
    ("page", "argv"),
    checked_bash_commands(),
    ids=[f"{page}:{' '.join(argv)[:50]}" for page, argv in checked_bash_commands()],
)
def test_bash_command_is_valid(page, argv, parse_only, monkeypatch):
    monkeypatch.chdir(ROOT)  # paths in commands are relative to the checkout
    argv = without_environment(argv)
    if page in RUN_ELSEWHERE or argv[0] in LEFT_ALONE or argv[:3] == ["python", "-m", "pytest"]:
        return
    args = cli_args(argv)
    if args is not None:
        from agents.cli import run

        run(args)
        assert len(parse_only) == 1, f"{page}: {' '.join(argv)} ran no command"
    elif argv[:2] == ["python", "-m"]:
        assert importlib.util.find_spec(argv[2]) is not None, f"{page}: no module {argv[2]}"
    elif argv[:2] == ["python", "-c"]:
        compile(argv[2], f"{page} python -c", "exec")
    elif argv[0] == "python":
        assert (ROOT / argv[1]).is_file(), f"{page}: no file {argv[1]}"
    else:
        pytest.fail(f"{page}: no rule checks {' '.join(argv)!r}; add one to tests/test_readme.py")
