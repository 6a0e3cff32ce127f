"""The repo's habits hold: mypy passes over the three packages (its configuration is ``[tool.mypy]``
in pyproject.toml), the pre-commit configuration is valid and runs ruff, ruff format and mypy, and
the changelog has an entry for the version pyproject.toml declares."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_mypy_passes_over_the_three_packages():
    assert PYPROJECT["tool"]["mypy"]["packages"] == ["rlenv", "agents", "reward_models"]
    proc = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=1200
    )
    assert proc.returncode == 0, f"mypy found errors:\n{proc.stdout[-8000:]}\n{proc.stderr[-2000:]}"


def test_pre_commit_config_is_valid_and_runs_ruff_format_and_mypy():
    import yaml

    proc = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", ".pre-commit-config.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = {hook["id"]: hook["entry"] for repo in config["repos"] for hook in repo["hooks"]}
    assert hooks["ruff"].startswith("ruff check") and hooks["ruff-format"].startswith("ruff format")
    assert hooks["mypy"] == "mypy"  # the packages and settings come from pyproject.toml, as in the test above


def test_changelog_has_an_entry_for_this_version():
    version = PYPROJECT["project"]["version"]
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "Keep a Changelog" in text and "## [Unreleased]" in text
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", text, flags=re.M)
    assert releases, "no '## [X.Y.Z] - YYYY-MM-DD' release headings"
    assert releases[0][0] == version, (
        f"pyproject.toml says {version}; the newest changelog entry is {releases[0][0]}"
    )
    dates = [d for _, d in releases]
    assert dates == sorted(dates, reverse=True), "releases newest first"
