"""The agents' own exception types, in one dependency-free module (config, algorithms and trainer
all raise them, and the CLI sorts them into user-input errors and training failures)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class ConfigError(Exception):
    """A contradictory or impossible configuration; the message names the fix.

    Deliberately not a ``ValueError``: tyro would catch that while parsing and print a framed
    block, where the CLI prints one ``error:`` line and exits with 2.
    """


class TrainingDivergedError(RuntimeError):
    """The loss, gradients or weights went non-finite; training stopped before saving anything bad."""


@contextlib.contextmanager
def built_from_user_input(what: str) -> Iterator[None]:
    """Building ``what`` (an env from its kwargs, a policy from a model directory) is driven by user
    input, so a ValueError or TypeError there is bad input: re-raise it as :class:`ConfigError`
    naming ``what``. Only wrap construction, never training, where such an error is a bug."""
    try:
        yield
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{what}: {err}") from err
