"""What a run leaves behind besides checkpoints: ``metrics.jsonl``, ``reward_curve.png`` and the trackers
of ``--report-to`` (TensorBoard, Weights & Biases).

One JSON object per update, appended and flushed at once, so a killed run keeps every finished update
and ``--resume`` can cut the file back to its checkpoint and continue it. The trackers get the numbers
of every record, the run's config and, at the end, the reward curve; a resumed run continues the same
W&B run (its id is kept in ``out/wandb_run_id``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.errors import ConfigError

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
CURVE_FILE = "reward_curve.png"
WANDB_ID_FILE = "wandb_run_id"


def _jsonable(value: Any) -> Any:
    """Non-finite floats become null (JSON has no NaN); numpy / torch scalars become Python numbers."""
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a ``metrics.jsonl`` (a directory holding one is accepted too)."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.exists():
        return []
    with path.open() as f:
        return [json.loads(line) for line in f if line.strip()]


def truncate_metrics(path: str | Path, last_step: int) -> None:
    """Drop records after ``last_step`` (the updates a resumed run is about to redo)."""
    path = Path(path)
    kept = [r for r in read_metrics(path) if r["step"] <= last_step]
    with path.open("w") as f:
        for record in kept:
            f.write(json.dumps(record) + "\n")


class RunLog:
    """Appends one record per update to ``out/metrics.jsonl`` and mirrors its numbers to the trackers.

    ``trackers``: any of ``"tensorboard"`` (``out/tensorboard``) and ``"wandb"`` (the run's files in
    ``out/wandb``, or under ``WANDB_DIR``; ``WANDB_MODE=offline`` needs no account, ``WANDB_PROJECT``
    names the project, default ``rlenv``). ``config`` is logged to the trackers once.
    """

    def __init__(self, out: str | Path, *, tensorboard: bool = False, trackers: Sequence[str] = (),
                 config: dict[str, Any] | None = None) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.path = self.out / METRICS_FILE
        self._file = self.path.open("a")
        tensorboard = tensorboard or "tensorboard" in trackers
        self._writer = _tensorboard_writer(self.out / "tensorboard") if tensorboard else None
        if self._writer is not None and config is not None:
            self._writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```")
        self._wandb = _wandb_run(self.out, config) if "wandb" in trackers else None

    def log(self, record: dict[str, Any]) -> None:
        clean = {k: _jsonable(v) for k, v in record.items()}
        self._file.write(json.dumps(clean) + "\n")
        self._file.flush()
        step = int(clean["step"])
        numbers = {k: v for k, v in clean.items()
                   if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}
        if self._writer is not None:
            for key, value in numbers.items():
                self._writer.add_scalar(key, value, step)
        if self._wandb is not None:
            self._wandb.log(numbers, step=step)

    def close(self, curve: str | Path | None = None) -> None:
        """Close the file and the trackers; ``curve`` (the reward-curve PNG) is logged to them first."""
        self._file.close()
        if self._writer is not None:
            if curve is not None and Path(curve).exists():
                self._writer.add_image("reward_curve", _png_array(curve), dataformats="HWC")
            self._writer.close()
        if self._wandb is not None:
            import wandb

            if curve is not None and Path(curve).exists():
                self._wandb.log({"reward_curve": wandb.Image(str(curve))})
            self._wandb.finish()


def _png_array(path: str | Path) -> Any:
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def _tensorboard_writer(directory: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        logger.warning("--tensorboard needs the tensorboard package (pip install tensorboard); logging JSONL only")
        return None
    return SummaryWriter(str(directory))


def _wandb_run(out: Path, config: dict[str, Any] | None) -> Any:
    """A W&B run writing under ``out/wandb``; a resumed run (same ``out``) continues the same W&B run."""
    try:
        import wandb
    except ImportError:
        raise ConfigError("--report-to wandb needs the wandb package: pip install 'rlenv[wandb]'") from None
    id_file = out / WANDB_ID_FILE
    run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:12]
    directory = Path(os.environ.get("WANDB_DIR") or out)  # wandb writes its files under directory/wandb
    (directory / "wandb").mkdir(parents=True, exist_ok=True)
    try:
        run = wandb.init(project=os.environ.get("WANDB_PROJECT", "rlenv"), name=out.name, id=run_id,
                         resume="allow", dir=str(directory), config=config)
    except Exception as err:  # no account / no network: say how to log without one
        raise ConfigError(
            f"--report-to wandb: wandb.init failed ({type(err).__name__}: {err}); log in with `wandb login`, or "
            "set WANDB_MODE=offline to write the run under the run directory (`wandb sync` uploads it later)"
        ) from err
    id_file.write_text(run_id + "\n")
    return run


def plot_curves(records: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Write the reward (mean ± std) and KL curves against the update step as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never opens a window
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in records]
    reward = [r["reward_mean"] for r in records]
    std = [r.get("reward_std") or 0.0 for r in records]
    kl = [r.get("kl") for r in records]
    fig, (ax_r, ax_kl) = plt.subplots(1, 2, figsize=(10, 3.8))
    if steps:
        ax_r.plot(steps, reward, color="tab:blue", label="reward mean")
        lo = [m - s for m, s in zip(reward, std, strict=True)]
        hi = [m + s for m, s in zip(reward, std, strict=True)]
        ax_r.fill_between(steps, lo, hi, color="tab:blue", alpha=0.15, label="± std")
        ax_r.legend(loc="lower right")
        if any(v is not None for v in kl):
            ax_kl.plot(steps, [float("nan") if v is None else v for v in kl], color="tab:red")
        else:
            ax_kl.text(0.5, 0.5, "no reference model (kl_coef = 0)", ha="center", transform=ax_kl.transAxes)
    ax_r.set(xlabel="update", ylabel="reward", title="reward")
    ax_kl.set(xlabel="update", ylabel="KL(policy || reference) per episode", title="KL to reference")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
