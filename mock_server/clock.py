"""Simulated time: the one ``Clock`` every timestamp of the mock comes from, and its wire format.

Modes: ``realtime`` (wall clock plus an offset that ``advance`` grows), ``manual`` (frozen until advanced),
``scaled`` (runs ``scale`` times faster than the wall clock from the moment the mode was set).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from mock_server.presets import CLOCK_MODES, ClockMode


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant; naive values are taken as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@functools.lru_cache(maxsize=1024)  # a request formats the same few instants many times (a manual clock stands still)
def format_instant(value: datetime) -> str:
    """``2026-05-07T12:00:00.123Z``: UTC, millisecond precision (truncated), Z suffix."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


class Clock:
    """Simulated time. ``wall`` is injectable so the clock itself is testable without sleeping."""

    def __init__(
        self,
        mode: ClockMode = "realtime",
        scale: float = 1.0,
        start: datetime | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._wall = wall
        self._anchor_sim = start or datetime.fromtimestamp(wall(), UTC)
        self._anchor_wall = wall()
        self.mode: ClockMode = mode
        self.scale = scale if mode == "scaled" else 1.0
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` whenever simulated time jumps or changes pace (the scheduler's lanes wake)."""
        self._listeners.append(listener)

    def wall_seconds_until(self, instant: datetime) -> float | None:
        """Wall seconds until simulated time reaches ``instant``; None while the clock is frozen."""
        if self.mode == "manual":
            return None if instant > self._anchor_sim else 0.0
        return max((instant - self.now()).total_seconds() / self.scale, 0.0)

    def now(self) -> datetime:
        if self.mode == "manual":
            return self._anchor_sim
        elapsed = (self._wall() - self._anchor_wall) * self.scale
        return self._anchor_sim + timedelta(seconds=elapsed)

    def wall_time(self) -> float:
        """The real Unix time, for the few checks that must follow the partner's wall clock."""
        return self._wall()

    def set_to(self, instant: datetime) -> None:
        """Jump to ``instant`` (callers check direction); the mode keeps running from there."""
        self._anchor_sim = instant
        self._anchor_wall = self._wall()
        for listener in self._listeners:
            listener()

    def set_mode(self, mode: ClockMode, scale: float | None = None) -> None:
        if mode not in CLOCK_MODES:
            raise ValueError(f"clock mode must be one of {', '.join(CLOCK_MODES)}")
        if scale is not None and scale <= 0:
            raise ValueError("scale must be > 0")
        current = self.now()
        self.mode = mode
        self.scale = (scale or self.scale or 1.0) if mode == "scaled" else 1.0
        self.set_to(current)

    def describe(self) -> dict[str, object]:
        return {"now": format_instant(self.now()), "mode": self.mode, "scale": self.scale}
