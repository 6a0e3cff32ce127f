"""The ``rlenv`` command line, in process: outputs, exit codes, one-line errors."""

from __future__ import annotations

import json

import pytest

from agents.cli import main
from agents.run_log import read_metrics
from tests.agents.helpers_trainers import one_torch_thread, save_tiny_model, tiny_env_args

REQUIRED = {"step", "episodes", "reward_mean", "kl", "loss", "elapsed_s"}


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    yield from one_torch_thread()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    return save_tiny_model(tmp_path_factory.mktemp("tiny_gpt2"))


def env_flags() -> list[str]:
    return ["--env", "rlenv/TextGen-v0", "--env-args", *tiny_env_args()]


def test_train_writes_metrics_and_curve_and_prints_a_summary(tiny_model, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    code = main(["train", "--algo", "grpo", *env_flags(), "--model", tiny_model, "--steps", "2",
                 "--batch-size", "8", "--group-size", "4", "--lr", "1e-3", "--out", str(out), "--device", "cpu"])
    assert code == 0
    records = read_metrics(out)
    assert [r["step"] for r in records] == [1, 2]
    assert all(REQUIRED <= set(r) for r in records)
    assert (out / "reward_curve.png").exists()
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("done: 2 updates, 16 episodes") and str(out) in summary


def test_train_resume_continues_the_run(tiny_model, tmp_path) -> None:
    out = tmp_path / "run"
    base = ["train", "--algo", "reinforce", *env_flags(), "--model", tiny_model, "--batch-size", "8",
            "--out", str(out), "--device", "cpu"]
    assert main([*base, "--steps", "1"]) == 0
    assert main([*base, "--steps", "2", "--resume", str(out)]) == 0
    assert [r["step"] for r in read_metrics(out)] == [1, 2]


def test_eval_prints_one_json_line(tiny_model, capsys) -> None:
    code = main(["eval", *env_flags(), "--model", tiny_model, "--episodes", "6", "--seed", "3", "--device", "cpu"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["episodes"] == 6 and summary["seed"] == 3
    assert {"reward_mean", "reward_std", "length_mean", "eos_rate"} <= set(summary)
    assert len(summary["samples"]) == 2 and {"prompt", "completion", "reward"} <= set(summary["samples"][0])


def test_eval_is_reproducible_with_a_seed(tiny_model, capsys) -> None:
    args = ["eval", *env_flags(), "--model", tiny_model, "--episodes", "4", "--device", "cpu"]
    main(args)
    main(args)
    first, second = capsys.readouterr().out.strip().splitlines()
    assert first == second


def test_envs_lists_every_id(capsys) -> None:
    import rlenv

    assert main(["envs", "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    ids = [r["id"] for r in records]
    assert ids == [info.id for info in rlenv.envs()] and "rlenv/TextGen-v0" in ids
    untrained = {r["id"]: r["untrained_heldout"] for r in records}
    assert untrained["rlenv/TextGen-v0"] is None and untrained["rlenv/Brief-v0"]["sampled"]["reward_mean"] < 1
    assert main(["envs"]) == 0
    assert "rlenv/TextGen-v0" in capsys.readouterr().out.replace("\n", "").replace("│", "").replace(" ", "")


def test_rm_train_calls_the_reward_model_trainer(tmp_path, capsys) -> None:
    data = tmp_path / "scores.jsonl"
    rows = [{"text": f"{w} movie", "score": s} for w, s in [("great", 1.0), ("awful", -1.0), ("fine", 0.2)] * 8]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    code = main(["rm", "train", "--loss", "mse", "--data", str(data), "--out", str(tmp_path / "rm"), "--epochs", "1"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["loss"] == "mse" and summary["num_train"] + summary["num_val"] == 24
    assert (tmp_path / "rm").is_dir()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["train", "--algo", "grpo", "--batch-size", "10", "--steps", "1"], "use --batch-size 8 or 12"),
        (["train", "--algo", "ppo"], "pass --steps N"),
        (["train", "--env", "rlenv/PositivReview-v0", "--steps", "1"], "did you mean 'rlenv/PositiveReview-v0'"),
        (["train", "--env", "rlenv/TextGen-v0", "--model", "/no/such/model", "--steps", "1"], "does not exist"),
        (["train", "--steps", "1", "--resume", "/no/such/run"], "does not exist"),
        (["eval", "--env", "rlenv/Nope-v0", "--model", "/no/such/model"], "unknown env id"),
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["rm", "fit"], "usage: rlenv rm train"),
        (["rm", "train", "--loss", "mse", "--data", "/no/such/file.jsonl"], "/no/such/file.jsonl"),
        (["bench", "/no/such/grid.json"], "does not exist"),
    ],
)
def test_bad_input_prints_one_error_line_and_exits_2(argv, expected, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and expected in err and "Traceback" not in err


def test_resume_with_different_flags_lists_differences_in_one_line(tiny_model, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    base = ["train", "--algo", "reinforce", *env_flags(), "--model", tiny_model, "--batch-size", "8",
            "--out", str(out), "--device", "cpu"]
    assert main([*base, "--steps", "1"]) == 0
    capsys.readouterr()
    assert main([*base, "--steps", "2", "--lr", "0.5", "--seed", "4", "--resume", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "lr: 0.0001 (checkpoint) != 0.5 (now)" in err and "seed: 0 (checkpoint) != 4 (now)" in err


def test_help_exits_cleanly(capsys) -> None:
    assert main(["--help"]) == 0
    assert "rlenv" in capsys.readouterr().out
    assert main(["train", "--help"]) == 0
    assert "--time-budget" in capsys.readouterr().out
