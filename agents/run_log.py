"""What a run leaves behind besides checkpoints: ``metrics.jsonl``, optional TensorBoard, ``reward_curve.png``.

One JSON object per update, appended and flushed at once, so a killed run keeps every finished update
and ``--resume`` can cut the file back to its checkpoint and continue it.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
CURVE_FILE = "reward_curve.png"


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
    """Appends one record per update to ``out/metrics.jsonl`` and mirrors numbers to TensorBoard."""

    def __init__(self, out: str | Path, *, tensorboard: bool = False) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.path = self.out / METRICS_FILE
        self._file = self.path.open("a")
        self._writer = _tensorboard_writer(self.out / "tensorboard") if tensorboard else None

    def log(self, record: dict[str, Any]) -> None:
        clean = {k: _jsonable(v) for k, v in record.items()}
        self._file.write(json.dumps(clean) + "\n")
        self._file.flush()
        if self._writer is not None:
            step = int(clean["step"])
            for key, value in clean.items():
                if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._writer.add_scalar(key, value, step)

    def close(self) -> None:
        self._file.close()
        if self._writer is not None:
            self._writer.close()


def _tensorboard_writer(directory: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        logger.warning("--tensorboard needs the tensorboard package (pip install tensorboard); logging JSONL only")
        return None
    return SummaryWriter(str(directory))


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
