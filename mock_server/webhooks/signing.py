"""The ``Zest-Signature`` header: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "t." + raw body>``.

The key is the UTF-8 bytes of the whole ``whsec_...`` secret; every attempt is signed afresh with its own ``t``.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "Zest-Signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def header_value(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"
