"""The named values a user picks from, on the command line and in ``ZEST_MOCK_*`` variables: the clock modes, the
audience presets and the partner that exists out of the box.

They live apart from ``settings`` so that the CLI can offer them in its options and its help without building the
settings class (about 10 ms of the 70 ms a CLI call may take; README, Performance).
"""

from __future__ import annotations

from typing import Literal

ClockMode = Literal["realtime", "manual", "scaled"]
CLOCK_MODES: tuple[ClockMode, ...] = ("realtime", "manual", "scaled")
DEV_CLIENT_ID = "dev-partner"  # the partner that exists out of the box (its config: data/dev_partner/partner.json)
AUDIENCE_PRESETS = {
    "local": "http://localhost:8080",
    "sandbox": "https://sandbox.api.zestequity.com",
    "production": "https://api.zestequity.com",
}


def resolve_audience(value: str) -> str:
    """An audience as a URL: a preset name (``local``, ``sandbox``, ``production``) as its URL, a URL as given."""
    return AUDIENCE_PRESETS.get(value, value).rstrip("/")
