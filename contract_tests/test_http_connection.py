"""The control client's own HTTP/1.1 wire (``harness.http_connection``), against a scripted server on loopback: what
it sends, the answers it reads (length, chunks, to the end, interim 1xx), when it keeps the connection, and how each
failure reaches the caller as ``MockUnreachable``."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable

import pytest

from mock_server.harness.control_client import ControlClient, ControlError, MockUnreachable

Handler = Callable[[socket.socket, "Script"], None]


class Script:
    """A loopback server: each accepted connection is given to ``handler``; heads and bodies read are kept."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self.requests: list[tuple[list[str], bytes]] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def __enter__(self) -> Script:
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                with contextlib.suppress(OSError):
                    self.handler(conn, self)

    def read_request(self, conn: socket.socket) -> bool:
        """Read one request (head and Content-Length body) into ``requests``; False if the client closed."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        length = next((int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length:")), 0)
        while len(body) < length:
            body += conn.recv(65536)
        self.requests.append((lines, body))
        return True


def answering(*answers: bytes, then_close: bool = False) -> Handler:
    """Answer each request on a connection with the next of ``answers`` (cycling), keeping the connection open."""

    def handler(conn: socket.socket, script: Script) -> None:
        index = 0
        while script.read_request(conn):
            conn.sendall(answers[index % len(answers)])
            index += 1
            if then_close:
                return

    return handler


def ok(body: dict[str, object], *extra: str) -> bytes:
    content = json.dumps(body).encode()
    head = ["HTTP/1.1 200 OK", "content-type: application/json", f"content-length: {len(content)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + content


def test_a_request_is_sent_as_http_1_1_with_its_json_body_and_the_connection_is_kept() -> None:
    with Script(answering(ok({"now": "t"}))) as server, ControlClient(server.url) as client:
        assert client.advance(60) == {"now": "t"}
        assert client.clock() == {"now": "t"}
        assert client.reset() == {"now": "t"}
    assert server.connections == 1
    (advance_head, advance_body), (clock_head, clock_body), _ = server.requests
    host = server.url.removeprefix("http://")
    assert advance_head == ["POST /_mock/clock/advance HTTP/1.1", f"Host: {host}", "Content-Type: application/json",
                            "Content-Length: 15"]
    assert advance_body == b'{"seconds": 60}'
    assert clock_head == ["GET /_mock/clock HTTP/1.1", f"Host: {host}"] and clock_body == b""


def test_a_chunked_answer_is_joined_past_extensions_and_trailers() -> None:
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;name=value\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\nTrailer-Field: x\r\n\r\n")
    with Script(answering(chunked)) as server, ControlClient(server.url) as client:
        assert client.state() == {"a": 1}
        assert client.state() == {"a": 1}
    assert server.connections == 1


def test_an_answer_without_a_length_ends_with_the_connection_and_the_next_call_opens_another() -> None:
    unframed = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{"framed": false}'
    with Script(answering(unframed, then_close=True)) as server, ControlClient(server.url) as client:
        assert client.state() == {"framed": False}
        assert client.state() == {"framed": False}
    assert server.connections == 2


def test_connection_close_is_honoured() -> None:
    with Script(answering(ok({"n": 1}, "connection: close"))) as server, ControlClient(server.url) as client:
        assert client.state() == {"n": 1}
        assert client.state() == {"n": 1}
    assert server.connections == 2


def test_an_interim_1xx_answer_is_skipped() -> None:
    with Script(answering(b"HTTP/1.1 100 Continue\r\n\r\n" + ok({"after": "continue"}))) as server, \
            ControlClient(server.url) as client:
        assert client.state() == {"after": "continue"}


def test_a_kept_alive_connection_the_server_closed_meanwhile_is_replaced_without_an_error() -> None:
    with Script(answering(ok({"n": 1}), then_close=True)) as server, ControlClient(server.url) as client:
        assert client.state() == {"n": 1}  # the server closes after answering, without saying so
        assert client.state() == {"n": 1}
    assert server.connections == 2


def test_a_fresh_connection_closed_before_an_answer_is_unreachable() -> None:
    def hang_up(conn: socket.socket, script: Script) -> None:
        script.read_request(conn)

    with Script(hang_up) as server, ControlClient(server.url) as client:
        with pytest.raises(MockUnreachable, match="the connection closed before an answer"):
            client.state()


@pytest.mark.parametrize(("answer", "reason"), [
    (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "not an HTTP/1.1 answer: status line 'SSH-2.0-OpenSSH_9.2'"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "not an HTTP/1.1 answer: header line 'no colon here'"),
    (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{}", "not an HTTP/1.1 answer: the connection closed 8 bytes "
                                                         "short of the body"),
    (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", "not an HTTP/1.1 answer: chunk size b'zz'"),
])
def test_a_malformed_answer_is_unreachable_with_what_was_wrong(answer: bytes, reason: str) -> None:
    with Script(answering(answer, then_close=True)) as server, ControlClient(server.url) as client:
        with pytest.raises(MockUnreachable) as refused:
            client.state()
    assert refused.value.reason == reason


def test_an_answer_that_never_comes_times_out() -> None:
    held = threading.Event()

    def silent(conn: socket.socket, script: Script) -> None:
        script.read_request(conn)
        held.wait(30)

    with Script(silent) as server, ControlClient(server.url, timeout=0.2) as client:
        with pytest.raises(MockUnreachable) as refused:
            client.state()
        held.set()
    assert refused.value.reason == "timed out"


def test_a_non_2xx_answer_is_refused_and_a_non_json_one_is_an_error() -> None:
    refusal = json.dumps({"code": "not_found", "detail": "no such thing"}).encode()
    not_found = b"HTTP/1.1 404 Not Found\r\ncontent-length: %d\r\n\r\n%s" % (len(refusal), refusal)
    with Script(answering(not_found, b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\n<html>")) as server, \
            ControlClient(server.url) as client:
        with pytest.raises(ControlError, match="404 not_found: no such thing"):
            client.state()
        with pytest.raises(ControlError, match="non-JSON"):
            client.state()
