"""Every teaching script in examples/ runs end to end in quick mode and saves its PNG.

Quick mode (``RLENV_EXAMPLES_QUICK=1``) shrinks step counts but walks every code path; the full
sizes are for people reading the examples, not for CI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("[0-9][0-9]_*.py"))


def test_examples_are_present():
    assert "01_reward_model.py" in SCRIPTS
    assert "06_multi_turn_feedback.py" in SCRIPTS


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs_in_quick_mode(script, tmp_path):
    out = tmp_path / "out"
    # the checkout's packages first, not whatever copy is installed
    path = os.pathsep.join(filter(None, [str(EXAMPLES.parent), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "RLENV_EXAMPLES_QUICK": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    png = out / script.replace(".py", ".png")
    assert png.is_file() and png.stat().st_size > 0, f"{script} did not save {png}:\n{proc.stdout[-2000:]}"
