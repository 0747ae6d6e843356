"""The HTTP/1.1 client webhook attempts go out on: keep-alive connections per endpoint (each framed by
``webhooks.framing``, which loads h11 with the first connection, not at start).

A general-purpose client (httpx) managed about 450 deliveries a second here, a tenth of what a 10,000-event retry
chain needs; this one only POSTs, reads the status, drains the body and keeps the connection for the next attempt.
Redirects are not followed. The caller bounds the whole exchange with its own deadline; ``Timing``
(``webhooks.exchange``) tells it when the request's first byte went out and when the answer was complete (the
acknowledgement time partners are judged on).
The TLS context is built on the first https attempt, not at start.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING

from mock_server.webhooks.exchange import READ_CHUNK, DeliveryError, Endpoint, Timing

if TYPE_CHECKING:
    from mock_server.webhooks.framing import Connection


class WebhookTransport:
    """Idle keep-alive connections per endpoint; a connection is used by one attempt at a time."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str, int], list[Connection]] = {}
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
            except (DeliveryError, OSError):
                connection.close()
        return await self._use(key, await self._open(endpoint), endpoint, body, headers, timing)

    def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    async def _use(self, key: tuple[str, str, int], connection: Connection, endpoint: Endpoint, body: bytes,
                   headers: dict[str, str], timing: Timing) -> int:
        try:
            status = await connection.post(endpoint, body, headers, timing)
        except BaseException:
            connection.close()
            raise
        if connection.reusable():
            self._idle.setdefault(key, []).append(connection)
        else:
            connection.close()
        return status

    async def _open(self, endpoint: Endpoint) -> Connection:
        from mock_server.webhooks.framing import Connection

        tls = None
        if endpoint.scheme == "https":
            self._tls = tls = self._tls or ssl.create_default_context()
        try:
            reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port, ssl=tls, limit=READ_CHUNK)
        except ssl.SSLError as exc:
            raise DeliveryError("tls_error", str(exc)) from exc
        except OSError as exc:
            raise DeliveryError("connect_error", str(exc) or type(exc).__name__) from exc
        return Connection(reader, writer)
