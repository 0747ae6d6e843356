"""Connection-level limits of the served mock: how big a request head may be, how many headers it may carry, how
long its head may take and how long a body may stall.

uvicorn's httptools protocol buffers a header of any length and waits forever for a head or a body. This subclass
counts each request head's raw bytes as they arrive (before httptools has buffered more than one socket read past
the limit) and arms one timer per connection, so that a hostile or broken client costs bounded memory, is cut off,
and never holds the event loop for long:

- a head over ``max_request_head_bytes`` (request line and headers), or with more than ``max_request_headers``
  header lines: 431;
- a head not complete ``header_timeout_seconds`` after its first byte (slowloris): 408; a connection that sent
  nothing at all in that time is closed without an answer;
- no byte for ``body_idle_timeout_seconds`` while a body is still owed (a lying Content-Length, a chunk size that
  is never delivered): 408 when no answer was started yet;
- a request httptools refuses to parse (both Content-Length and Transfer-Encoding, a repeated Content-Length, a bad
  or overflowing chunk size, a bad header character): 400.

Each answer is the Zest envelope (code ``invalid_request``) with ``Connection: close``. The connection is then
closed in two steps (RFC 9112 section 9.6): the write side first; the socket once the client closes, or after
``LINGER_SECONDS`` or ``LINGER_BYTES`` of reading and dropping what it still sends. Closing at once with unread
bytes would send a reset, which can destroy the answer before the client reads it. These answers happen before any
app sees a request, so their errorId comes from the OS, not from the seeded id stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from mock_server.errors import InvalidRequest, envelope
from mock_server.settings import Settings

log = logging.getLogger("zest_mock.limits")
_REQUEST_LINE_OVERHEAD = len(b"  HTTP/1.1\r\n") + len(b"\r\n")  # spaces, version and the blank line after the head
_HEADER_OVERHEAD = len(b": \r\n")
LINGER_SECONDS = 2.0
LINGER_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    head_bytes: int
    headers: int
    header_timeout: float
    body_idle_timeout: float

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(settings.max_request_head_bytes, settings.max_request_headers, settings.header_timeout_seconds,
                   settings.body_idle_timeout_seconds)


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing; the answer is in ``status`` and ``detail``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def _answer(status: int, detail: str, default_headers: list[tuple[bytes, bytes]] | None = None) -> bytes:
    """A complete HTTP/1.1 answer in the Zest envelope that closes the connection."""
    body = json.dumps(envelope(InvalidRequest(detail, status=status), str(uuid.uuid4())),
                      separators=(",", ":")).encode()
    lines = [STATUS_LINE[status]]
    lines += [name + b": " + value + b"\r\n" for name, value in default_headers or []]
    lines += [b"content-type: application/json\r\n", b"content-length: %d\r\n" % len(body), b"connection: close\r\n",
              b"\r\n", body]
    return b"".join(lines)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits above; made for one ``Settings`` by ``protocol_class``."""

    limits: ClassVar[Limits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # between the end of the last request's body and the end of this request's head
        self._head_begun = False
        self._head_bytes = 0
        self._header_count = 0
        self._timer: asyncio.TimerHandle | None = None
        self._lingering = False
        self._discarded = 0

    # ---- the connection -----------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:  # answered and half closed: what the client still sends is read and dropped
            self._discarded += len(data)
            if self._discarded > LINGER_BYTES:
                self.transport.close()
            return
        if self._in_head:
            self._head_bytes += len(data)
        elif self._timer is not None:  # a body is owed and bytes arrived: it is not idle
            self._arm(self.limits.body_idle_timeout, self._body_timed_out)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserCallbackError as exc:  # a limit above, or uvicorn failing on the request line
            refused = exc.__context__
            if isinstance(refused, _Refused):
                self._refuse(refused.status, refused.detail)
            else:
                log.info("request refused as unreadable: %r", refused)
                self._refuse(400, "malformed HTTP request: its request line or headers could not be read")
            return
        except httptools.HttpParserError as exc:
            self._refuse(400, f"malformed HTTP request: {exc}")
            return
        if self._in_head and self._head_bytes > self.limits.head_bytes:
            self._refuse(431, self._too_large())

    # ---- parser callbacks ---------------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_begun = True
        if self._timer is None:  # the next request on a kept-alive connection: its head gets its own deadline
            self._arm(self.limits.header_timeout, self._head_timed_out)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.headers:
            raise _Refused(431, f"request has more than {self.limits.headers} header fields")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        # A head that arrived in one read with its body was not counted byte by byte: measure what was parsed.
        size = (len(self.parser.get_method()) + len(self.url) + _REQUEST_LINE_OVERHEAD
                + sum(len(n) + len(v) + _HEADER_OVERHEAD for n, v in self.headers))
        if size > self.limits.head_bytes:
            raise _Refused(431, self._too_large())
        self._in_head, self._head_begun, self._head_bytes, self._header_count = False, False, 0, 0
        self._arm(self.limits.body_idle_timeout, self._body_timed_out)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True
        super().on_message_complete()

    # ---- refusing -----------------------------------------------------------------------------------------------

    def _too_large(self) -> str:
        return f"request head (request line and headers) is over {self.limits.head_bytes} bytes"

    def _head_timed_out(self) -> None:
        self._timer = None
        if not self._head_begun:
            self.transport.close()  # it never said anything: there is nothing to answer
            return
        self._refuse(408, f"request head not complete within {self.limits.header_timeout:g} s")

    def _body_timed_out(self) -> None:
        self._timer = None
        if self.flow.read_paused:  # the app has not read what it has yet; the client is not the one stalling
            self._arm(self.limits.body_idle_timeout, self._body_timed_out)
            return
        self._refuse(408, f"no request body bytes for {self.limits.body_idle_timeout:g} s")

    def _refuse(self, status: int, detail: str) -> None:
        """Answer ``status`` unless this request was already answered (or an earlier one still is owed), then close."""
        self._disarm()
        log.info("refused %s:%s with %d: %s", *(self.client or ("?", "?")), status, detail)
        if self.transport.is_closing():
            return
        cycle = self.cycle  # in a head: the previous request's, if any; in a body: this request's
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's receive() now reports http.disconnect, its send() writes nothing
            cycle.message_event.set()
        owed_elsewhere = cycle is not None and (not cycle.response_complete if self._in_head
                                                 else cycle.response_started)
        if owed_elsewhere:  # a pipelined earlier answer, or this request's answer already (half) sent
            self.transport.close()
            return
        self.transport.write(_answer(status, detail, self.server_state.default_headers))
        self._lingering = True
        self.flow.resume_reading()
        self.transport.write_eof()  # FIN once the answer is flushed; the client's close then ends the connection
        self._timer = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _arm(self, seconds: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def protocol_class(settings: Settings) -> type[GuardedHttpToolsProtocol]:
    """The protocol to pass as ``uvicorn.Config(http=...)`` for an instance with these settings."""

    class Configured(GuardedHttpToolsProtocol):
        limits = Limits.of(settings)

    return Configured
