"""The partner that exists out of the box: its shipped key and configuration files (its client id is
``settings.DEV_CLIENT_ID``).

Public: partners' tools and the harness sign assertions with this key; ``domain.partners`` registers the partner.
"""

from __future__ import annotations

from importlib import resources

DEV_PARTNER_DIR = resources.files("mock_server") / "data" / "dev_partner"


def dev_partner_private_key() -> str:
    """The shipped private key of the dev partner (also in ``fixtures/``)."""
    return (DEV_PARTNER_DIR / "ed25519-private.pem").read_text()
