"""Training the learned reward model with each loss beats a constant predictor; checkpoints round-trip."""

from __future__ import annotations

import json
import time

import pytest
import torch

from reward_models.learned import ScalarRewardModel
from reward_models.objectives import PointwiseMSE, bradley_terry_loss
from reward_models.training import RMProgress, RMTrainConfig, RMTrainError, train_reward_model


def test_bradley_terry_loss_by_hand():
    chosen, rejected = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0])
    expected = (
        -(torch.sigmoid(torch.tensor(2.0 - 0.5)).log() + torch.sigmoid(torch.tensor(-1.0 - 0.5)).log()) / 2
    )
    assert torch.allclose(bradley_terry_loss(chosen, rejected, 0.5), expected)


def _train(data_files, loss, tmp_path=None, **kwargs):
    config = RMTrainConfig(
        loss=loss, data=str(data_files[loss]), out=str(tmp_path) if tmp_path else None, **kwargs
    )
    start = time.perf_counter()
    result = train_reward_model(config)
    return result, time.perf_counter() - start


@pytest.mark.slow
def test_mse_beats_constant_baseline_and_round_trips(data_files, tmp_path):
    result, seconds = _train(data_files, "mse", tmp_path, epochs=4, seed=0)
    val, base = result.val_metrics, result.baseline_metrics
    assert val["pearson"] > 0.5 and val["spearman"] > 0.5
    assert val["mse"] < 0.7 * base["mse"]
    assert base["pearson"] == 0.0
    assert len(result.history) == 4 and seconds < 60
    loaded = ScalarRewardModel.from_pretrained(tmp_path)
    a, b = result.model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    texts = ["The movie was wonderful!", "The food was awful."]
    assert loaded([""] * 2, texts) == result.model([""] * 2, texts)
    good, bad = loaded([""] * 2, texts)
    assert good > bad
    summary = json.loads((tmp_path / "train_metrics.json").read_text())
    assert summary["val_metrics"] == pytest.approx(val) and summary["config"]["loss"] == "mse"


@pytest.mark.slow
def test_ce_beats_majority_class(data_files):
    result, _ = _train(data_files, "ce", epochs=4, seed=0)
    assert result.val_metrics["accuracy"] > result.baseline_metrics["accuracy"] + 0.15
    assert result.val_metrics["cross_entropy"] < result.baseline_metrics["cross_entropy"]
    assert result.model.labels == ["negative", "neutral", "positive"]
    pos, neg = result.model([""] * 2, ["The plot was brilliant and lovely", "The staff was terrible"])
    assert pos > neg  # reward = P(last label) = P(positive)


@pytest.mark.slow
def test_bt_learns_preferences(data_files):
    result, _ = _train(data_files, "bt", epochs=4, seed=0)
    assert result.val_metrics["pairwise_accuracy"] > 0.7
    assert result.baseline_metrics["pairwise_accuracy"] == 0.5
    assert result.val_metrics["bt_loss"] < result.baseline_metrics["bt_loss"]


@pytest.mark.slow
def test_training_is_deterministic_and_reports_progress(data_files, tmp_path):
    small = tmp_path / "small.jsonl"
    small.write_text("".join(data_files["mse"].read_text().splitlines(keepends=True)[:120]))
    events: list[RMProgress] = []
    config = RMTrainConfig(loss="mse", data=str(small), epochs=2, batch_size=16, seed=7)
    first = train_reward_model(config, progress=events.append)
    second = train_reward_model(config)
    assert first.history == second.history
    steps = [e for e in events if e.metrics is None]
    assert [e.step for e in steps] == list(range(1, steps[-1].total_steps + 1))
    assert [e.epoch for e in events if e.metrics is not None] == [1, 2]


@pytest.mark.slow
def test_continue_from_saved_model_and_given_tokenizer(data_files, tmp_path, word_tokenizer):
    small = tmp_path / "small.jsonl"
    small.write_text("".join(data_files["bt"].read_text().splitlines(keepends=True)[:60]))
    first = train_reward_model(RMTrainConfig(loss="bt", data=str(small), epochs=1, out=str(tmp_path / "a")))
    resumed = train_reward_model(
        RMTrainConfig(loss="bt", data=str(small), epochs=1, model=str(tmp_path / "a"))
    )
    assert resumed.model.tokenizer.get_vocab() == first.model.tokenizer.get_vocab()
    with pytest.raises(RMTrainError, match="has 1 outputs but --loss ce needs 3"):
        train_reward_model(
            RMTrainConfig(loss="ce", data=str(data_files["ce"]), epochs=1, model=str(tmp_path / "a"))
        )
    own = train_reward_model(RMTrainConfig(loss="bt", data=str(small), epochs=1), tokenizer=word_tokenizer)
    assert own.model.tokenizer is word_tokenizer


def test_bad_config_fails_before_training(tmp_path):
    config = RMTrainConfig(
        loss="l1", data=str(tmp_path / "none.jsonl"), model=str(tmp_path / "nope"), epochs=0, lr=-1.0,
        val_fraction=1.5, hidden_size=30, num_heads=4, margin=1.0,
    )  # fmt: skip
    with pytest.raises(RMTrainError) as info:
        train_reward_model(config)
    message = str(info.value)
    for fragment in ("--loss must be one of", "--data", "--model", "--epochs must be >= 1", "--lr", "--val-fraction",
                     "divisible by --num-heads", "--margin only applies"):  # fmt: skip
        assert fragment in message


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(data_files, tmp_path, monkeypatch):
    small = tmp_path / "small.jsonl"
    small.write_text("".join(data_files["mse"].read_text().splitlines(keepends=True)[:40]))
    real_loss, calls = PointwiseMSE.loss, []

    def flaky(self, model, batch):
        calls.append(1)
        loss = real_loss(self, model, batch)
        return loss * float("nan") if len(calls) > 2 else loss  # epoch 1 = 2 steps, then NaN

    monkeypatch.setattr(PointwiseMSE, "loss", flaky)
    out = tmp_path / "ckpt"
    config = RMTrainConfig(loss="mse", data=str(small), epochs=3, batch_size=16, out=str(out))
    with pytest.raises(
        RMTrainError, match=r"non-finite loss nan at epoch 2, step 3.*last good checkpoint \(epoch 1\)"
    ):
        train_reward_model(config)
    assert ScalarRewardModel.from_pretrained(out)([""], ["fine"])  # the epoch-1 model is intact
