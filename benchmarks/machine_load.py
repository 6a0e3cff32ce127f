"""The machine's load, printed beside every timing: a ratio measured on a shared machine means
little without it (two torch threads on two busy cores can run several times slower)."""

from __future__ import annotations

import os


def load_note() -> str:
    """``load average 1.92 / 1.40 / 0.80 (1/5/15 min) on 2 cores`` (os.getloadavg, as ``uptime``)."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} cores"
