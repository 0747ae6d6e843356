"""One blocking, kept-alive HTTP/1.1 client connection on the standard library's ``socket``: the control client's
wire when it is given no httpx client.

It sends a request with a ``Content-Length`` body and reads the whole answer: status line, headers, then a body
framed by ``Content-Length``, ``Transfer-Encoding: chunked`` or the end of the connection; 1xx interim answers are
skipped. It is hand-written, not ``http.client`` nor h11 (which frames the webhook transport, ``webhooks.framing``),
because of what importing them costs a CLI call, counted by callgrind on the bench machine beside click, socket,
json and urllib.parse (197 M instructions): ``http.client`` with ``email`` and ``ssl`` 67 M more (about 20 ms), h11
42 M more, against a budget that leaves a CLI call about 15 ms beyond ``--version`` (README, Performance); ``ssl``
is imported only for an ``https`` URL.

Errors::

    OSError                   connecting, sending or reading failed (``TimeoutError`` when the socket timed out)
    ├── ClosedBeforeAnswer    the server closed the connection before any byte of an answer (a kept-alive
    │                         connection it closed meanwhile: sending again on a new one is safe)
    └── MalformedAnswer       what came back is not an HTTP/1.x answer
"""

from __future__ import annotations

import socket
from urllib.parse import SplitResult

MAX_HEAD_BYTES = 64 * 1024
_READ = 64 * 1024


class ClosedBeforeAnswer(ConnectionError):
    def __init__(self) -> None:
        super().__init__("the connection closed before an answer")


class MalformedAnswer(OSError):
    def __init__(self, what: str) -> None:
        super().__init__(f"not an HTTP/1.1 answer: {what}")


class Connection:
    """A connection to ``url``'s host; ``exchange`` may be called again while ``reusable`` is true."""

    def __init__(self, url: SplitResult, connect_timeout: float) -> None:
        host = url.hostname or "localhost"
        port = url.port or (443 if url.scheme == "https" else 80)
        # An ASCII name as bytes: a str would be IDNA-encoded, importing encodings.idna (2 ms) for a name like localhost
        name: str | bytes = host.encode() if host.isascii() else host
        sock = socket.create_connection((name, port), timeout=connect_timeout)
        if url.scheme == "https":
            import ssl

            try:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
            except OSError:  # ssl.SSLError is one: a failed handshake leaves no socket open
                sock.close()
                raise
        self.sock, self.authority = sock, url.netloc
        self.reusable = True
        self._buffer = bytearray()

    def close(self) -> None:
        self.reusable = False
        self.sock.close()

    def exchange(self, method: str, target: str, body: bytes | None, timeout: float) -> tuple[int, str, bytes]:
        """Send one request and return ``(status, reason, body)`` of its answer, waiting at most ``timeout`` for
        each read."""
        self.sock.settimeout(timeout)
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.authority}"]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        elif method in ("POST", "PUT", "PATCH"):
            lines.append("Content-Length: 0")
        self.sock.sendall("\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + (body or b""))
        status, reason, headers = self._head(first=True)
        while 100 <= status < 200:
            status, reason, headers = self._head(first=False)
        if "close" in headers.get("connection", "").lower():
            self.reusable = False
        return status, reason, self._body(headers)

    def _head(self, *, first: bool) -> tuple[int, str, dict[str, str]]:
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise MalformedAnswer(f"a head of over {MAX_HEAD_BYTES} bytes")
            if not self._fill():
                if first and not self._buffer:
                    raise ClosedBeforeAnswer()
                raise MalformedAnswer("the connection closed inside the head")
        head = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        del self._buffer[:end + 4]
        version, _, rest = head[0].partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not (code.isdigit() and len(code) == 3):
            raise MalformedAnswer(f"status line {head[0][:80]!r}")
        headers: dict[str, str] = {}
        for line in head[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise MalformedAnswer(f"header line {line[:80]!r}")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        if version == "HTTP/1.0" and "keep-alive" not in headers.get("connection", "").lower():
            self.reusable = False
        return int(code), reason, headers

    def _body(self, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._chunked()
        if "content-length" in headers:
            length = headers["content-length"]
            if not length.isdigit():
                raise MalformedAnswer(f"Content-Length {length[:40]!r}")
            return self._exact(int(length))
        self.reusable = False  # neither length nor chunks: the body ends with the connection
        while self._fill():
            pass
        content = bytes(self._buffer)
        self._buffer.clear()
        return content

    def _chunked(self) -> bytes:
        parts = []
        while True:
            size_field = self._line().split(b";", 1)[0].strip()
            try:
                size = int(size_field, 16)
            except ValueError:
                raise MalformedAnswer(f"chunk size {size_field[:40]!r}") from None
            if size == 0:
                while self._line():  # trailer fields, up to the blank line
                    pass
                return b"".join(parts)
            parts.append(self._exact(size))
            if self._exact(2) != b"\r\n":
                raise MalformedAnswer("a chunk not followed by CRLF")

    def _line(self) -> bytes:
        while (end := self._buffer.find(b"\r\n")) < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise MalformedAnswer("a chunk line too long")
            if not self._fill():
                raise MalformedAnswer("the connection closed inside a chunked body")
        line = bytes(self._buffer[:end])
        del self._buffer[:end + 2]
        return line

    def _exact(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not self._fill():
                raise MalformedAnswer(f"the connection closed {size - len(self._buffer)} bytes short of the body")
        content = bytes(self._buffer[:size])
        del self._buffer[:size]
        return content

    def _fill(self) -> bool:
        """Read once more; False at the end of the connection."""
        data = self.sock.recv(_READ)
        self._buffer += data
        return bool(data)
