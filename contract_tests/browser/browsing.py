"""Constants of the browser tests: window sizes, the hang guard, where the upload fixtures are."""

from __future__ import annotations

from pathlib import Path

WAIT_SECONDS = 60  # a hang guard on a loaded machine, never a verdict
DESKTOP = (1280, 900)
PHONE = (390, 844)
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
