"""A researcher's own things through the real ``rlenv`` command (a subprocess, as a user runs it): a reward
function from a file trains, resumes, evaluates and samples; config files; W&B offline; a start-up that
does not import the heavy stack where the command does not need it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agents.cli import _train_args, main
from agents.training.run_log import read_metrics

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = '["the movie was", "a film", "the food was"]'
ENV_FLAGS = [
    "--env",
    "rlenv/TextGen-v0",
    "--env-args",
    f"prompts={PROMPTS}",
    "max_prompt_tokens=8",
    "max_new_tokens=4",
]

REWARDS_PY = """
def quarter(completions, **kwargs):
    return [0.25] * len(completions)

def one(prompts, completions, **kwargs):
    return [1.0] * len(completions)

def boom(completions, **kwargs):
    return [1 / 0 for _ in completions]
"""

pytestmark = pytest.mark.usefixtures("single_thread")


def rlenv(
    *argv: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess:
    """``rlenv *argv`` in a fresh interpreter with this checkout first on the path."""
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "agents.cli", *argv],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=600,
    )


def tiny_train(model: str, *flags: str) -> list[str]:
    """``train`` on the tiny model: reinforce, 2 episodes of 4 tokens per update, on the CPU."""
    return [
        "train",
        "--algo",
        "reinforce",
        *ENV_FLAGS,
        "--model",
        model,
        "--batch-size",
        "2",
        "--device",
        "cpu",
        *flags,
    ]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "my_rewards.py").write_text(REWARDS_PY)
    return tmp_path


def saved_config(run: Path) -> dict:
    checkpoints = sorted((run / "checkpoints").glob("step_*"))
    return json.loads((checkpoints[-1] / "train_config.json").read_text())


@pytest.mark.slow
def test_a_reward_function_from_a_file_trains_resumes_evaluates_and_samples(tiny_model, workdir) -> None:
    # two functions, weighted: 2 * 0.25 - 1 * 1.0 = -0.5 on every episode, whatever the text; the env's
    # own reward (VADER) would give anything else
    reward = ["--reward-funcs", "my_rewards.py:quarter", "my_rewards:one", "--reward-weights", "2", "-1"]
    done = rlenv(*tiny_train(tiny_model, *reward, "--steps", "2", "--out", "run"), cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert "Writing model shards" not in done.stderr and "Loading weights" not in done.stderr
    run = workdir / "run"
    assert [r["reward_mean"] for r in read_metrics(run)] == [-0.5, -0.5]
    saved = saved_config(run)
    assert saved["reward_funcs"] == [
        f"{workdir / 'my_rewards.py'}:quarter",
        "my_rewards:one",
    ]  # the file, absolute
    assert saved["reward_weights"] == [2.0, -1.0]

    resumed = rlenv("train", "--resume", "run", "--steps", "3", cwd=workdir)  # only the run's saved settings
    assert resumed.returncode == 0, resumed.stderr
    assert [r["reward_mean"] for r in read_metrics(run)] == [-0.5, -0.5, -0.5]

    evaluated = rlenv(
        "eval",
        "--model",
        "run",
        *ENV_FLAGS,
        "--split",
        "none",
        "--episodes",
        "2",
        "--device",
        "cpu",
        cwd=workdir,
    )
    assert evaluated.returncode == 0, evaluated.stderr
    summary = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert summary["reward_mean"] == -0.5 and summary["reward_funcs"] == saved["reward_funcs"]

    sampled = rlenv("sample", "--model", "run", "--n", "2", "--device", "cpu", cwd=workdir)
    assert sampled.returncode == 0, sampled.stderr
    headers = [line for line in sampled.stdout.splitlines() if line.startswith("--- ")]
    assert headers == ["--- 1/2  reward -0.500  ended: budget", "--- 2/2  reward -0.500  ended: budget"]
    assert any(line.split(" | ")[0] in json.loads(PROMPTS) for line in sampled.stdout.splitlines())


@pytest.mark.parametrize(
    ("spec", "message"),
    [("missing.py:quarter", "file '.*/missing.py' does not exist"),
     ("my_rewards.py:quater", "has no 'quater'.*did you mean 'quarter'"),
     ("no_such_module_xyz:fn", "cannot import module 'no_such_module_xyz'")],
)  # fmt: skip
def test_a_missing_reward_file_module_or_name_is_a_one_line_error(workdir, spec, message) -> None:
    import re

    done = rlenv("train", *ENV_FLAGS, "--steps", "1", "--reward-funcs", spec, cwd=workdir)
    assert done.returncode == 2
    assert done.stderr.startswith("error: --reward-funcs:") and len(done.stderr.strip().splitlines()) == 1
    assert re.search(message, done.stderr), done.stderr


@pytest.mark.slow
def test_an_exception_inside_the_reward_function_names_it_and_the_batch(tiny_model, workdir) -> None:
    flags = ["--steps", "1", "--out", "run", "--reward-funcs", "my_rewards.py:boom"]
    done = rlenv(*tiny_train(tiny_model, *flags), cwd=workdir)
    assert done.returncode == 2
    assert (
        "reward model 'boom' raised ZeroDivisionError: division by zero while scoring a batch of 2"
        in done.stderr
    )
    assert "RLENV_DEBUG=1" in done.stderr


# ---- config files --------------------------------------------------------------------------------
FLAGS = [
    "--algo",
    "grpo",
    "--env",
    "rlenv/TextGen-v0",
    "--env-args",
    "max_prompt_tokens=8",
    "max_new_tokens=4",
    "--steps",
    "3",
    "--batch-size",
    "4",
    "--group-size",
    "2",
    "--lr",
    "0.001",
    "--no-scale-advantages",
    "--report-to",
    "none",
]
YAML = """\
algo: grpo
env: rlenv/TextGen-v0
env_args: {max_prompt_tokens: 8, max_new_tokens: 4}
steps: 3
batch-size: 4
group_size: 2
lr: 1.0e-3
scale_advantages: false
report_to: [none]
"""
TOML = """\
algo = "grpo"
env = "rlenv/TextGen-v0"
env_args = ["max_prompt_tokens=8", "max_new_tokens=4"]
steps = 3
batch_size = 4
group-size = 2
lr = 1e-3
scale_advantages = false
report_to = ["none"]
"""


def test_yaml_and_toml_configs_give_the_same_config_as_the_flags(tmp_path) -> None:
    (tmp_path / "run.yaml").write_text(YAML)
    (tmp_path / "run.toml").write_text(TOML)
    from_flags = _train_args(list(FLAGS))
    assert _train_args(["--config", str(tmp_path / "run.yaml")]) == from_flags
    assert _train_args([f"--config={tmp_path / 'run.toml'}"]) == from_flags


def test_flags_override_the_config_file(tmp_path) -> None:
    (tmp_path / "run.yaml").write_text(YAML)
    config = _train_args(["--config", str(tmp_path / "run.yaml"), "--lr", "0.5", "--steps", "7"])
    assert (config.lr, config.steps, config.group_size) == (0.5, 7, 2)


def test_a_config_file_may_leave_out_what_a_flag_gives(tmp_path) -> None:
    (tmp_path / "partial.toml").write_text('algo = "reinforce"\nbatch_size = 6\n')
    config = _train_args(["--config", str(tmp_path / "partial.toml"), "--steps", "2"])
    assert (config.algo, config.batch_size, config.steps) == ("reinforce", 6, 2)


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [("bach_size = 4\n", "c.toml", "unknown setting 'bach_size' \\(did you mean 'batch_size'\\?\\)"),
     ("steps = [\n", "c.toml", "is not valid TOML"),
     ("steps: [1\n", "c.yaml", "is not valid YAML"),
     ("- 1\n", "c.yaml", "must hold a table of settings"),
     ("steps = 1\n", "c.ini", "must be .toml, .yaml, .yml, .json"),
     ('steps = "ten"\n', "c.toml", "c.toml': steps must be an integer, got 'ten'"),  # not a TypeError
     ("kl_estimator: k9\nsteps: 1\n", "c.yaml", "kl_estimator must be one of 'k1', 'k2', 'k3', got 'k9'")],
)  # fmt: skip
def test_a_bad_config_file_is_a_one_line_error(tmp_path, capsys, text, name, message) -> None:
    import re

    (tmp_path / name).write_text(text)
    assert main(["train", "--config", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and re.search(message, err), err


def test_a_missing_config_file_is_named(tmp_path, capsys) -> None:
    assert main(["train", "--config", str(tmp_path / "nope.yaml"), "--steps", "1"]) == 2
    assert "--config file" in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_from_a_yaml_file_saves_the_merged_config(tiny_model, tmp_path) -> None:
    (tmp_path / "run.yaml").write_text(YAML)
    done = rlenv(
        "train",
        "--config",
        "run.yaml",
        "--model",
        tiny_model,
        "--steps",
        "1",
        "--device",
        "cpu",
        "--out",
        "run",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    expected = _train_args([*FLAGS, "--model", tiny_model, "--steps", "1", "--device", "cpu", "--out", "run"])
    assert saved_config(tmp_path / "run") == {**expected.to_dict(), "out": "run"}


# ---- trackers ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_wandb_offline_writes_its_run_with_metrics_config_and_curve(tiny_model, tmp_path) -> None:
    pytest.importorskip("wandb")
    wandb_dir = tmp_path / "wandb_home"
    wandb_dir.mkdir()
    env = {
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(wandb_dir),
        "WANDB_CONFIG_DIR": str(wandb_dir),
        "WANDB_CACHE_DIR": str(wandb_dir),
        "WANDB_SILENT": "true",
    }
    flags = ["--steps", "2", "--out", "run", "--report-to", "wandb", "--seed", "1234"]
    done = rlenv(*tiny_train(tiny_model, *flags), cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    run_id = (tmp_path / "run" / "wandb_run_id").read_text().strip()
    runs = list((wandb_dir / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(runs) == 1, list((wandb_dir / "wandb").iterdir())
    record = (runs[0] / f"run-{run_id}.wandb").read_bytes()
    for logged in (
        b"reward_mean",
        b"kl_coef",
        b"1234",
        b"reward_curve",
    ):  # a metric, config keys and values, the curve
        assert logged in record, logged
    assert list((runs[0] / "files" / "media" / "images").glob("reward_curve_*.png"))


def test_report_to_none_cannot_be_combined(capsys) -> None:
    assert main(["train", "--steps", "1", "--report-to", "none", "wandb"]) == 2
    assert "'none' cannot be combined" in capsys.readouterr().err


# ---- start-up ------------------------------------------------------------------------------------
HEAVY = ("torch", "transformers")


def heavy_modules_after(argv: list[str], cwd: Path) -> tuple[str, int, str]:
    """Run ``rlenv *argv`` in a fresh interpreter; the heavy modules it imported, its exit code and stderr."""
    probe = (
        "import sys; from agents.cli import main; code = main(sys.argv[1:]); "
        f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules], code)"
    )
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", probe, *argv],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.stdout.strip(), done.stderr
    return done.stdout.strip().splitlines()[-1], done.returncode, done.stderr


@pytest.mark.parametrize(
    ("argv", "code"),
    [(["--help"], 0), (["envs", "--json"], 0), (["frobnicate"], 2), (["trian"], 2),
     (["train", "--env", "rlenv/NoSuchTask-v0", "--steps", "1"], 2),
     (["sample", "--env", "rlenv/PositveReview-v0"], 2), (["serve", "rlenv/Nope-v0"], 2),
     # the train parser and TrainConfig's checks read the algorithms' torch-free specs
     (["train", "--algo", "grpo", "--batch-size", "6", "--group-size", "4", "--steps", "1"], 2),
     (["train", "--algo", "dapo", "--kl-target", "0.1", "--steps", "1"], 2),
     (["train", "--algo", "ppo", "--epsilon-high", "0.3", "--steps", "1"], 2),
     (["train", "--algo", "grpo", "--kl-estimator", "k1", "--steps", "1"], 2),
     (["train", "--env", "rlenv/Arithmetic-v0", "--lr", "-1", "--steps", "1"], 2)],  # reads the task card
)  # fmt: skip
def test_help_envs_and_early_errors_do_not_import_torch_or_transformers(tmp_path, argv, code) -> None:
    heavy, _, stderr = heavy_modules_after(argv, tmp_path)
    assert heavy == f"HEAVY [] {code}", stderr
    if code == 2:
        assert stderr.startswith("error: ") and len(stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [["train", "--help"], ["train", "--no-such-flag", "1"], ["train", "--batch-size", "six", "--steps", "1"],
     ["train", "--algo", "a2c", "--steps", "1"]],
)  # fmt: skip
def test_train_help_and_flag_parse_errors_do_not_import_torch_or_transformers(tmp_path, argv) -> None:
    """tyro's own answers (the help, an unknown flag, a value of the wrong type or outside the choices)
    come from the train parser, which is built from TrainConfig and the algorithms' specs alone."""
    heavy, code, stderr = heavy_modules_after(argv, tmp_path)
    expected = 0 if argv[-1] == "--help" else 2
    assert heavy == f"HEAVY [] {expected}", stderr


def test_a_config_file_with_a_bad_combination_fails_before_torch(tmp_path) -> None:
    (tmp_path / "cfg.toml").write_text('algo = "rloo"\nbatch_size = 6\ngroup_size = 4\nsteps = 1\n')
    heavy, _, stderr = heavy_modules_after(["train", "--config", "cfg.toml"], tmp_path)
    assert heavy == "HEAVY [] 2", stderr
    assert stderr.startswith(
        "error: --batch-size 6 is not divisible by --group-size 4; use --batch-size 4 or 8"
    )


def test_train_config_and_its_checks_import_no_torch(tmp_path) -> None:
    """From Python too: building and validating a TrainConfig (defaults resolved from the task card and
    the algorithm's spec) leaves torch and transformers unloaded."""
    probe = (
        "import sys; from agents.training.config import TrainConfig, ConfigError\n"
        "config = TrainConfig(algo='gspo', env='rlenv/Arithmetic-v0', steps=1, batch_size=8)\n"
        "assert (config.clip_range, config.kl_coef, config.kl_kind) == (3e-4, 0.0, 'k3'), config\n"
        "try:\n    TrainConfig(algo='rloo', steps=1, ppo_epochs=2)\nexcept ConfigError as err:\n    print(err)\n"
        f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules])"
    )
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=300
    )
    assert done.stdout.strip().splitlines() == [
        "rloo makes 1 on-policy pass per batch; drop --ppo-epochs, or use "
        "--algo grpo/ppo to reuse batches with a clipped ratio",
        "HEAVY []",
    ], done.stderr


@pytest.mark.parametrize(
    ("argv", "code", "error"),
    [(["bench", "--help"], 0, ""), (["bench", "--no-such-flag", "1"], 2, ""), (["bench", "--steps", "many"], 2, ""),
     (["bench", "jobs.toml"], 2, "error: --jobs must be >= 1, got 0"),
     (["bench", "steps.toml"], 2, "error: bench grid file 'steps.toml': steps must be an integer, got 'ten'"),
     (["bench", "algo.toml"], 2, "error: unknown algo 'a2c'"),  # a cell's own TrainConfig check
     (["bench", "--envs", "rlenv/TextGen-v0"], 2, "error: rlenv/TextGen-v0 has no held-out prompt split"),
     (["bench", "missing.toml"], 2, "error: bench grid file 'missing.toml' does not exist")],
)  # fmt: skip
def test_bench_help_and_input_errors_do_not_import_torch_or_transformers(tmp_path, argv, code, error) -> None:
    """``rlenv bench`` parses its grid file and flags and checks the grid (every cell's TrainConfig
    included) with agents.benchmarking.bench_config alone; the runner, and torch with it, is imported only
    for a grid that will run, and a refused grid leaves no output directory behind."""
    (tmp_path / "jobs.toml").write_text("jobs = 0\n")
    (tmp_path / "steps.toml").write_text('steps = "ten"\n')
    (tmp_path / "algo.toml").write_text('algos = ["a2c"]\nenvs = ["rlenv/Keyword-v0"]\n')
    heavy, _, stderr = heavy_modules_after(argv, tmp_path)
    assert heavy == f"HEAVY [] {code}", stderr
    assert stderr.startswith(error)
    if error:
        assert len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()  # BenchConfig.out's default, relative to the working directory


def test_a_mistyped_command_suggests_the_right_one(capsys) -> None:
    assert main(["smaple"]) == 2
    assert "did you mean 'sample'?" in capsys.readouterr().err
