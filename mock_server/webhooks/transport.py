"""The HTTP/1.1 client webhook attempts go out on: keep-alive connections per endpoint, framing by h11.

A general-purpose client (httpx) managed about 450 deliveries a second here, a tenth of what a 10,000-event retry
chain needs; this one only POSTs, reads the status, drains the body and keeps the connection for the next attempt.
Redirects are not followed. The caller bounds the whole exchange with its own deadline; ``Timing`` tells it when the
request's first byte went out and when the answer was complete (the acknowledgement time partners are judged on).
The TLS context is built on the first https attempt, not at start.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11

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


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.http = h11.Connection(h11.CLIENT)

    async def post(self, endpoint: Endpoint, body: bytes, headers: dict[str, str], timing: Timing) -> int:
        fields = [("Host", endpoint.authority), ("Content-Length", str(len(body))), *headers.items()]
        timing.sent, timing.answered = time.perf_counter(), None
        self.writer.write(self.http.send(h11.Request(method="POST", target=endpoint.target, headers=fields))
                          + self.http.send(h11.Data(data=body)) + self.http.send(h11.EndOfMessage()))
        await self.writer.drain()
        status = 0
        while True:
            event = self.http.next_event()
            if event is h11.NEED_DATA:
                self.http.receive_data(await self.reader.read(READ_CHUNK))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.EndOfMessage):
                timing.answered = time.perf_counter()
                return status
            elif isinstance(event, h11.ConnectionClosed):
                raise DeliveryError("transport_error", "connection closed before the answer was complete")

    def reusable(self) -> bool:
        if self.http.our_state is h11.DONE and self.http.their_state is h11.DONE:
            self.http.start_next_cycle()
            return True
        return False

    def close(self) -> None:
        self.writer.close()


class WebhookTransport:
    """Idle keep-alive connections per endpoint; a connection is used by one attempt at a time."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._tls: ssl.SSLContext | None = None

    async def post(self, url: str, body: bytes, headers: dict[str, str], timing: Timing | None = None) -> int:
        """POST ``body``; the status code of the answer, or ``DeliveryError``. ``timing`` receives the instants."""
        timing = timing or Timing()
        endpoint = Endpoint.parse(url)
        key = (endpoint.scheme, endpoint.host, endpoint.port)
        pooled = self._idle.get(key, [])
        while pooled:  # a kept-alive connection the receiver may have closed meanwhile: retry on a fresh one
            connection = pooled.pop()
            try:
                return await self._use(key, connection, endpoint, body, headers, timing)
            except (DeliveryError, OSError, h11.ProtocolError):
                connection.close()
        return await self._use(key, await self._open(endpoint), endpoint, body, headers, timing)

    def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    async def _use(self, key: tuple[str, str, int], connection: _Connection, endpoint: Endpoint, body: bytes,
                   headers: dict[str, str], timing: Timing) -> int:
        try:
            status = await connection.post(endpoint, body, headers, timing)
        except h11.ProtocolError as exc:
            connection.close()
            raise DeliveryError("transport_error", f"not a valid HTTP/1.1 answer: {exc}") from exc
        except BaseException:
            connection.close()
            raise
        if connection.reusable():
            self._idle.setdefault(key, []).append(connection)
        else:
            connection.close()
        return status

    async def _open(self, endpoint: Endpoint) -> _Connection:
        tls = None
        if endpoint.scheme == "https":
            self._tls = tls = self._tls or ssl.create_default_context()
        try:
            reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port, ssl=tls, limit=READ_CHUNK)
        except ssl.SSLError as exc:
            raise DeliveryError("tls_error", str(exc)) from exc
        except OSError as exc:
            raise DeliveryError("connect_error", str(exc) or type(exc).__name__) from exc
        return _Connection(reader, writer)
