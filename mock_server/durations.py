"""Durations as people write them (``30s``, ``5m``, ``2h``, ``1d``, ``1h30m``, ``90``), as seconds of simulated time.

Shared by ``zest-mock clock advance`` and the pytest plugin's ``zest_clock.advance``. Simulated time only moves
forward, so a negative duration is refused with a message saying so.
"""

from __future__ import annotations

import contextlib
import math
import re

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")
_UNIT_SECONDS = (86400, 3600, 60, 1)


def parse_duration(value: str | float) -> float:
    """Seconds in ``value``, or ``ValueError`` with a message fit for a person."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    seconds = float(value) if isinstance(value, int | float) else _seconds(value)
    if seconds < 0:
        raise ValueError(f"{value!r} is negative: simulated time only moves forward (give 5m, not -5m)")
    if not math.isfinite(seconds):
        raise ValueError(f"{value!r} is not a duration of zero or more seconds")
    return seconds


def _seconds(value: str) -> float:
    text = value.strip().lower()
    with contextlib.suppress(ValueError):
        return float(text)
    match = _DURATION.fullmatch(text.removeprefix("-"))
    if not text or match is None or not any(match.groups()):
        raise ValueError(f"{value!r} is not a duration like 30s, 5m, 2h, 1d or 1h30m")
    seconds = sum(float(part) * unit for part, unit in zip(match.groups(), _UNIT_SECONDS, strict=True) if part)
    return -seconds if text.startswith("-") else seconds
