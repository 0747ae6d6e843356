"""The partner that exists out of the box: its shipped key and configuration files (its client id is
``presets.DEV_CLIENT_ID``).

Public: partners' tools and the harness sign assertions with this key; ``domain.partners`` registers the partner.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEV_PARTNER_DIR = resources.files("mock_server") / "data" / "dev_partner"


def dev_partner_private_key() -> str:
    """The shipped private key of the dev partner (also in ``fixtures/``)."""
    return (DEV_PARTNER_DIR / "ed25519-private.pem").read_text()


def dev_partner_private_key_file() -> Path:
    """Where the shipped dev key lies in the installed package, for partners' own code to read."""
    return Path(str(DEV_PARTNER_DIR / "ed25519-private.pem")).resolve()
