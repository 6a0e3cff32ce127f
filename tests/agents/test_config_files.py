"""Settings files (agents.config_files): a value of the wrong type is refused when the file is read,
naming the field and the type it needs, instead of failing later inside a config's checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, get_type_hints

import pytest

from agents.benchmarking.bench_config import BenchConfig, load_grid_file
from agents.config_files import read_config_file
from agents.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

# annotation: (values that fit, values that do not) — as a TOML/YAML/JSON file holds them, lists as tuples
CASES: dict[Any, tuple[list[Any], list[Any]]] = {
    int: ([0, -3], [1.5, "ten", True, None]),
    float: ([0.5, 2], ["1e-4", False, None]),  # an int is a number; a bool is not
    bool: ([True, False], [1, "true"]),
    str: (["x"], [1, ("x",)]),
    float | None: ([None, 1e-5], ["none"]),
    tuple[str, ...]: ([(), ("a", "b")], ["a", ("a", 1)]),
    tuple[int, ...]: ([(0, 1)], [3, (0, 1.5), (True,)]),
    Literal["local", "ray"]: (["local", "ray"], ["slurm", 1]),
    dict[str, tuple[str, ...]]: ([{}, {"k": ("a=1",)}], [{"k": "a=1"}, ("k",)]),
}


@pytest.mark.parametrize("annotation", list(CASES), ids=str)
def test_a_value_of_the_wrong_type_is_refused_naming_the_type(tmp_path, annotation) -> None:
    fits, misfits = CASES[annotation]
    path = tmp_path / "grid.json"
    for value in fits:
        path.write_text(json.dumps({"x": value}))
        assert read_config_file(path, ["x"], "grid file", {"x": annotation}) == {"x": value}
    for value in misfits:
        path.write_text(json.dumps({"x": value}))
        with pytest.raises(ConfigError, match=r"grid file '.*grid.json': x must be "):
            read_config_file(path, ["x"], "grid file", {"x": annotation})


def test_without_types_a_file_is_read_as_it_is(tmp_path) -> None:
    (tmp_path / "c.toml").write_text('steps = "ten"\n')
    assert read_config_file(tmp_path / "c.toml", ["steps"], "config file") == {"steps": "ten"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('steps = "ten"\n', "steps must be an integer, got 'ten'"),
        ("seeds = 3\n", "seeds must be a list of integers, got 3"),
        ('backend = "slurm"\n', "backend must be one of 'local', 'ray', got 'slurm'"),
        ("eval_greedy = 1\n", "eval_greedy must be true or false, got 1"),
        ('lr = "1e-5"\n', "lr must be a number, got '1e-5'"),
        (
            'task_args = {"rlenv/Keyword-v0" = "max_words=3"}\n',
            "task_args must be a table (each value a list of strings), got",
        ),
    ],
)
def test_the_bench_grid_file_is_checked_against_bench_config(tmp_path, text, message) -> None:
    (tmp_path / "grid.toml").write_text(text)
    names = list(get_type_hints(BenchConfig))
    with pytest.raises(ConfigError) as err:
        read_config_file(tmp_path / "grid.toml", names, "bench grid file", get_type_hints(BenchConfig))
    assert message in str(err.value)


def test_the_published_grids_have_the_right_types() -> None:
    for grid in ("suite.toml", "loss_menu.toml"):
        assert load_grid_file(ROOT / "benchmarks" / grid)["algos"]


def test_a_yaml_number_read_as_text_says_how_to_write_it(tmp_path) -> None:
    """PyYAML reads ``1e-5`` (no dot) as a string: the error gives the spelling YAML reads as a number."""
    (tmp_path / "c.yaml").write_text("lr: 1e-5\n")
    with pytest.raises(ConfigError, match="lr must be a number, got .1e-5.") as err:
        read_config_file(tmp_path / "c.yaml", ["lr"], "config file", {"lr": float | None})
    assert "write it with a dot: 1.0e-05" in str(err.value)
    (tmp_path / "c.yaml").write_text("lr: 1.0e-05\n")
    assert read_config_file(tmp_path / "c.yaml", ["lr"], "config file", {"lr": float | None}) == {"lr": 1e-5}
