"""The ``rlenv`` command line, in process: outputs, exit codes, one-line errors."""

from __future__ import annotations

import json

import pytest

from agents.cli import main
from agents.training.run_log import read_metrics
from tests.agents.helpers_trainers import tiny_env_args

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny models: one torch thread

REQUIRED = {"step", "episodes", "reward_mean", "kl", "loss", "elapsed_s"}


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


def test_a_bug_inside_training_keeps_its_traceback(tiny_model, tmp_path, monkeypatch) -> None:
    """Only user-input errors become one-line exit-2 messages; a ValueError deep inside an update is a bug."""
    import agents.algorithms.grpo

    def broken_update(self, batch, rewards):
        raise ValueError("an internal shape bug")

    monkeypatch.setattr(agents.algorithms.grpo.GRPO, "update", broken_update)
    with pytest.raises(ValueError, match="an internal shape bug"):
        main(["train", "--algo", "grpo", *env_flags(), "--model", tiny_model, "--steps", "1", "--batch-size", "4",
              "--out", str(tmp_path / "run"), "--device", "cpu"])


def test_bad_env_arguments_are_bad_input(tiny_model, tmp_path, capsys) -> None:
    code = main(["train", "--algo", "grpo", "--env", "rlenv/TextGen-v0", "--env-args", *tiny_env_args(),
                 "max_prompt_tokens=0", "--model", tiny_model, "--steps", "1", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert "cannot build rlenv/TextGen-v0" in err and "max_prompt_tokens must be >= 1" in err


# ---- resume without retyping; Ctrl-C names the real command ------------------------------------------
def test_resume_takes_the_run_s_saved_flags_as_defaults(tiny_model, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", "--algo", "reinforce", *env_flags(), "--model", tiny_model, "--batch-size", "8",
                 "--lr", "1e-3", "--out", str(out), "--device", "cpu", "--steps", "1"]) == 0
    assert main(["train", "--resume", str(out), "--steps", "2"]) == 0  # nothing else retyped
    assert [r["step"] for r in read_metrics(out)] == [1, 2]
    assert main(["train", f"--resume={out}", "--time-budget", "600", "--steps", "3"]) == 0  # budgets may change
    assert [r["step"] for r in read_metrics(out)] == [1, 2, 3]
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--steps", "4", "--batch-size", "4"]) == 2  # a passed flag counts
    assert "batch_size: 8 (checkpoint) != 4 (now)" in capsys.readouterr().err


def test_ctrl_c_prints_the_command_that_continues_the_run(tiny_model, tmp_path, capsys, monkeypatch) -> None:
    import shlex

    import agents.training.trainer

    out = tmp_path / "my run"  # a space: the printed command must quote it
    real, calls = agents.training.trainer.collect_rollouts, []

    def interrupt_third_update(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(agents.training.trainer, "collect_rollouts", interrupt_third_update)
    argv = ["train", "--algo", "reinforce", *env_flags(), "--model", tiny_model, "--batch-size", "8",
            "--out", str(out), "--device", "cpu", "--steps", "4", "--checkpoint-every", "1"]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "interrupted at update 3; step_000002 is kept" in err and "<out>" not in err
    command = shlex.split(err.strip().splitlines()[-1])
    assert command[:2] == ["rlenv", "train"]
    monkeypatch.setattr(agents.training.trainer, "collect_rollouts", real)
    assert main(command[1:]) == 0  # the printed command, as printed
    assert [r["step"] for r in read_metrics(out)] == [1, 2, 3, 4]


def test_ctrl_c_before_the_first_checkpoint_says_there_is_nothing_to_resume(tiny_model, tmp_path, capsys,
                                                                            monkeypatch) -> None:
    import agents.training.trainer

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(agents.training.trainer, "collect_rollouts", interrupt)
    out = tmp_path / "run"
    assert main(["train", "--algo", "reinforce", *env_flags(), "--model", tiny_model, "--batch-size", "8",
                 "--out", str(out), "--device", "cpu", "--steps", "4"]) == 130
    assert f"nothing to resume: delete {out} and start again" in capsys.readouterr().err


# ---- errors that were tracebacks or riddles --------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["train", "--env", "rlenv/TokenReverse-v0", "--steps", "1", "--device", "cpu"],
         "toy for policies without a language model"),
        (["train", "--env", "rlenv/TextGen-v0", "--env-args", "max_new_token=4", "--steps", "1", "--device", "cpu"],
         "does not accept 'max_new_token' (did you mean 'max_new_tokens'?); env options: "),
        (["eval", "--env", "rlenv/Arithmetic-v0", "--env-args", "dificulty=hard", "--device", "cpu"],
         "(did you mean 'difficulty'?); task options: difficulty, max_operand, operators"),
        (["train", "--env", "rlenv/PositivReview-v0", "--steps", "1"], "did you mean 'rlenv/PositiveReview-v0', 'rlenv/"),
    ],
)
def test_more_bad_input_prints_one_error_line(argv, expected, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and expected in err, err
    assert err.count("'rlenv/PositiveReview-v0'") <= 1


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a torch without CUDA")
@pytest.mark.parametrize("command", [["train", "--steps", "1"], ["eval", "--env", "rlenv/Arithmetic-v0"]])
def test_device_cuda_without_cuda_is_one_line_naming_the_fix(command, capsys) -> None:
    assert main([*command, "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--device cuda:" in err and "--device auto" in err and "--device cpu" in err


def test_rm_help_prints_usage_without_an_error(capsys) -> None:
    assert main(["rm", "--help"]) == 0
    captured = capsys.readouterr()
    assert "rlenv rm train --loss" in captured.out and "error" not in captured.out + captured.err


@pytest.mark.parametrize("command", [["train"], ["eval"], ["bench"], ["envs"], ["rm", "train"]])
def test_help_text_has_no_rest_markup(command, capsys) -> None:
    assert main([*command, "--help"]) == 0
    text = capsys.readouterr().out
    assert "--help" in text and "``" not in text and ":func:" not in text and ":class:" not in text


def test_rm_train_refuses_to_overwrite_an_existing_out(tmp_path, capsys) -> None:
    data = tmp_path / "scores.jsonl"
    data.write_text("\n".join(json.dumps({"text": f"{w} movie", "score": s})
                              for w, s in [("great", 1.0), ("awful", -1.0)] * 8) + "\n")
    argv = ["rm", "train", "--loss", "mse", "--data", str(data), "--out", str(tmp_path / "rm"), "--epochs", "1"]
    assert main(argv) == 0
    before = sorted(p.name for p in (tmp_path / "rm").iterdir())
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already exists and is not empty; pass a new --out" in err
    assert sorted(p.name for p in (tmp_path / "rm").iterdir()) == before


def test_eval_of_a_run_directory_uses_its_latest_checkpoint(tiny_model, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", "--algo", "reinforce", *env_flags(), "--model", tiny_model, "--batch-size", "8",
                 "--out", str(out), "--device", "cpu", "--steps", "2", "--checkpoint-every", "1"]) == 0
    capsys.readouterr()
    assert main(["eval", *env_flags(), "--model", str(out), "--episodes", "4", "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["model"] == str(out / "checkpoints" / "step_000002")
