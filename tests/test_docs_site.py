"""The documentation site builds with ``mkdocs build --strict`` (a broken link, a missing anchor or
cross-reference, a page left out of the nav, a docstring mkdocstrings cannot render: each fails),
and its API reference covers every public name of the three packages.

mkdocstrings reads the source statically (griffe), so the build imports nothing and needs no
network; the build runs in a subprocess with the checkout first on the path.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("rlenv", "agents", "reward_models")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "NO_MKDOCS_2_WARNING": "1",
    }  # Material's banner about its successor, not a build problem
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"mkdocs build --strict failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    )
    return out


def inventory(site: Path) -> set[str]:
    """Every object the API reference rendered, from the Sphinx inventory mkdocstrings writes."""
    header, _, body = (site / "objects.inv").read_bytes().partition(b"zlib.\n")
    assert header.startswith(b"# Sphinx inventory version 2")
    return {line.split(" ", 1)[0] for line in zlib.decompress(body).decode().splitlines()}


def public_modules(package: str) -> list[str]:
    names = []
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not any(p.startswith("_") for p in parts):
            names.append(".".join(parts))
    return names


def test_site_builds_strictly_with_every_page(site):
    for page in (
        "index",
        "environments/index",
        "reward-models/index",
        "training/index",
        "benchmarking/index",
        "scaling-out/index",
        "serving/index",
        "bridges/index",
        "teaching/index",
        "performance/index",
        "embedded-model/index",
        "development/index",
        "changelog/index",
        "api/rlenv/index",
    ):
        assert (site / f"{page}.html").is_file(), page


@pytest.mark.parametrize("package", PACKAGES)
def test_api_reference_covers_every_exported_name(site, package):
    rendered = inventory(site)
    module = importlib.import_module(package)
    assert [n for n in module.__all__ if f"{package}.{n}" not in rendered] == []


@pytest.mark.parametrize("package", PACKAGES)
def test_api_reference_covers_every_public_module(site, package):
    rendered = inventory(site)
    assert [m for m in public_modules(package) if m not in rendered] == []


def test_changelog_page_is_the_changelog_file(site):
    text = (site / "changelog" / "index.html").read_text(encoding="utf-8")
    assert "Keep a Changelog" in text and "0.2.0" in text
