"""One webhook exchange as the transport and its framing see it: the endpoint it goes to, the instants it is timed
by, and the error of an attempt that got no HTTP answer."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

READ_CHUNK = 65536


class DeliveryError(Exception):
    """An attempt that got no HTTP answer; ``kind`` names the failure class (``connect_error``, ...)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(detail or kind)
        self.kind = kind


@dataclass(slots=True)
class Timing:
    """``time.perf_counter()`` instants of one exchange: the request's first byte written, the answer complete."""

    sent: float | None = None
    answered: float | None = None


@dataclass(frozen=True, slots=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    target: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DeliveryError("invalid_url", f"not an http(s) URL: {url!r}")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise DeliveryError("invalid_url", str(exc)) from exc
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(parts.scheme, parts.hostname, port, target)

    @property
    def authority(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"
