"""Hostile HTTP on a real socket: what reaches uvicorn before any app code runs, and the control plane's guard.

Each test speaks raw bytes to a real ``uvicorn`` serving the mock with the connection limits of ``zest-mock serve``
(httptools and ``mock_server/http/limits.py``), on a pre-bound loopback port. Everything is bounded by count (bytes,
connections, headers); clocks only appear as hang guards on reads, never in a verdict. Timeouts are driven by a
second server whose header and body timeouts are 1 s: the tests await the 408 (or the close), they never time it.

- head limits: a head over 64 KiB (one header, or a head arriving with its body), 101 headers, and one endless
  header value: 431, closed, and a bounded number of bytes read by the server before it stopped;
- timeouts: a stalled head (slowloris, also 100 at once while a normal client is served), a body that stalls under
  a lying Content-Length or a chunk size of 2^64-1, a connection that says nothing;
- framing and smuggling: Content-Length with Transfer-Encoding, duplicate and non-numeric Content-Length, bad and
  overflowing chunk sizes, a request hidden after the body: 400, closed, the hidden request never answered;
- non-UTF-8 in the path, a header and a JSON body; huge and deep JSON and broken multipart over the wire;
- the control plane's Host and Origin guard (DNS rebinding, cross-site simple requests).

The server's RSS (this process's, as it runs in a thread here) is read before and after the hostile clients and
must grow by less than 20 MB per hostile client.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from support import bearer, live_server, settings

from mock_server.app import create_app

KiB, MiB = 1024, 1024 * 1024
HEAD_LIMIT = 64 * KiB
RSS_BOUND_PER_CLIENT = 20 * MiB
HANG_GUARD_SECONDS = 60.0  # only ever a guard against a hang: every verdict is about what was answered


@dataclass
class Server:
    url: str
    app: Starlette
    port: int

    def token(self) -> str:
        return bearer(self.app)["Authorization"]


def _served(**overrides: Any) -> Iterator[Server]:
    def make_app(url: str) -> Starlette:
        return create_app(settings(public_url=url, **overrides))

    with live_server(make_app, limits=True) as (url, app):
        yield Server(url, app, int(url.rsplit(":", 1)[1]))


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    yield from _served()


@pytest.fixture(scope="module")
def tight() -> Iterator[Server]:
    """Header and body timeouts of 1 s, for requests that stall on purpose (and a few whose head is one write)."""
    yield from _served(header_timeout_seconds=1.0, body_idle_timeout_seconds=1.0)


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * KiB
    raise AssertionError("no VmRSS")


# ---- a raw HTTP/1.1 client -----------------------------------------------------------------------------------

@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool  # the server closed the connection after this answer

    def envelope(self, status: int) -> dict[str, Any]:
        assert self.status == status, (self.status, self.body[:300])
        assert self.headers.get("content-type", "").startswith("application/json"), self.headers
        body: dict[str, Any] = json.loads(self.body)
        assert body["code"] and body["detail"] and body["errorId"], body
        return body


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_SECONDS)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_answer(sock: socket.socket) -> Answer:
    """One response (Content-Length framed, as the mock sends them), then whether the connection was closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(64 * KiB)
        assert chunk, f"connection closed before a response: {data[:200]!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(64 * KiB)
        assert chunk, "connection closed inside a response body"
        body += chunk
    rest = body[length:]
    closed = False
    if headers.get("connection") == "close":
        rest += _until_eof(sock)
        closed = True
    assert not rest, f"bytes after the answer: {rest[:200]!r}"
    return Answer(int(status_line.split()[1]), headers, body[:length], closed)


def _until_eof(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(64 * KiB):
        data += chunk
    return data


def ask(server: Server, raw: bytes) -> Answer:
    with connect(server) as sock:
        sock.sendall(raw)
        return read_answer(sock)


def request(method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"",
            host: str = "127.0.0.1") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def still_serving(server: Server) -> None:
    answer = ask(server, request("GET", "/v1/oauth2/info", {"Authorization": server.token()}))
    assert answer.status == 200 and json.loads(answer.body)["clientId"] == "dev-partner"


# ---- the request head: size and header count ------------------------------------------------------------------

def test_a_head_over_64_kib_is_431_and_closed(server: Server) -> None:
    raw = b"GET /public/hc HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * HEAD_LIMIT
    answer = ask(server, raw)  # the head never ends: the server stops at its limit
    assert str(HEAD_LIMIT) in answer.envelope(431)["detail"] and answer.closed
    still_serving(server)


def test_a_head_over_the_limit_arriving_with_its_body_is_431(server: Server) -> None:
    raw = request("POST", "/v1/investors", {"X-Big": "b" * (HEAD_LIMIT + 100), "Content-Type": "application/json"},
                  b'{"investors": []}')
    answer = ask(server, raw)
    assert str(HEAD_LIMIT) in answer.envelope(431)["detail"] and answer.closed


def test_a_head_just_under_the_limit_is_served(server: Server) -> None:
    raw = request("GET", "/public/hc", {"X-Big": "c" * (HEAD_LIMIT - 200)})
    assert ask(server, raw).status == 200


def test_100_headers_are_served_and_101_are_431(server: Server) -> None:
    extra = {f"X-H{i}": "v" for i in range(99)}  # + Host = 100
    assert ask(server, request("GET", "/public/hc", extra)).status == 200
    answer = ask(server, request("GET", "/public/hc", {**extra, "X-H99": "v"}))
    assert "100 header fields" in answer.envelope(431)["detail"] and answer.closed


def test_the_servers_of_the_pytest_plugin_and_the_scenario_runner_have_the_same_limits() -> None:
    from mock_server.serving import in_thread

    with in_thread(seed=1, clock_mode="manual") as (url, _):
        served = Server(url, create_app(settings()), int(url.rsplit(":", 1)[1]))
        answer = ask(served, request("GET", "/public/hc", {f"X-H{i}": "v" for i in range(100)}))
        assert "100 header fields" in answer.envelope(431)["detail"] and answer.closed
        answer = ask(served, b"GET /public/hc HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * HEAD_LIMIT)
        assert str(HEAD_LIMIT) in answer.envelope(431)["detail"] and answer.closed


def test_an_endless_header_is_cut_off_after_bounded_bytes_and_memory(server: Server) -> None:
    before = rss()
    sent = 0
    with connect(server) as sock:
        sock.sendall(b"GET /public/hc HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Endless: ")
        chunk = b"e" * (64 * KiB)
        try:
            while sent < 256 * MiB:  # the count bound; the server must have stopped reading long before
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            tail = _until_eof(sock)
        except ConnectionResetError:
            tail = b""
    # What the server did read is bounded by its limit plus socket buffers (a few MB on loopback), not by the client.
    assert sent < 64 * MiB, sent
    assert tail == b"" or tail.startswith(b"HTTP/1.1 431 "), tail[:100]
    assert rss() - before < RSS_BOUND_PER_CLIENT, (before, rss())
    still_serving(server)


# ---- timeouts -------------------------------------------------------------------------------------------------

def test_a_stalled_head_is_408_and_closed(tight: Server) -> None:
    with connect(tight) as sock:
        sock.sendall(b"GET /public/hc HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")  # and then nothing
        answer = read_answer(sock)
    assert "request head not complete" in answer.envelope(408)["detail"] and answer.closed


def test_a_connection_that_says_nothing_is_closed_without_an_answer(tight: Server) -> None:
    with connect(tight) as sock:
        assert _until_eof(sock) == b""


def test_100_slowloris_connections_all_get_408_and_others_are_served_meanwhile(tight: Server) -> None:
    before = rss()
    socks = [connect(tight) for _ in range(100)]
    try:
        for sock in socks:
            sock.sendall(b"GET /public/hc HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        served = ask(tight, request("GET", "/public/hc"))  # one write: its head is complete at once
        assert served.status == 200
        answers = [read_answer(sock) for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    assert [a.status for a in answers] == [408] * 100 and all(a.closed for a in answers)
    assert rss() - before < RSS_BOUND_PER_CLIENT, (before, rss())  # for all 100 together


def _lying_post(server: Server, declared: int) -> bytes:
    return (f"POST /v1/investors HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {server.token()}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n").encode()


def test_a_body_that_stalls_under_a_lying_content_length_is_408(tight: Server) -> None:
    with connect(tight) as sock:
        sock.sendall(_lying_post(tight, 500_000) + b'{"investors": [' + b" " * 1000)  # 1 KB of the 500 KB promised
        answer = read_answer(sock)
    assert "no request body bytes" in answer.envelope(408)["detail"] and answer.closed
    still_serving(tight)


def test_a_connection_answered_early_whose_body_then_stalls_is_closed(tight: Server) -> None:
    with connect(tight) as sock:
        sock.sendall(_lying_post(tight, 10 * MiB) + b'{"investors": [')  # over the JSON cap: 413 before the body
        assert read_answer(sock).envelope(413)
        assert _until_eof(sock) == b""  # the 10 MB never come: closed when the body goes idle


def test_a_chunk_of_2_to_the_64_minus_1_bytes_that_never_comes_is_408(tight: Server) -> None:
    head = (f"POST /v1/investors HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {tight.token()}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    with connect(tight) as sock:
        sock.sendall(head + b"FFFFFFFFFFFFFFFF\r\n" + b"{" * 100)
        answer = read_answer(sock)
    assert answer.envelope(408) and answer.closed


# ---- framing and smuggling ------------------------------------------------------------------------------------

HIDDEN = b"GET /_mock/partners HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"  # smuggled after the body, if it were split
FRAMING = {
    "Content-Length and Transfer-Encoding": b"POST /public/hc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\n"
                                            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + HIDDEN,
    "two different Content-Lengths": b"POST /public/hc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
                                     b"Content-Length: 50\r\n\r\n" + HIDDEN,
    "two equal Content-Lengths": b"POST /public/hc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
                                 b"Content-Length: 0\r\n\r\n" + HIDDEN,
    "a negative Content-Length": b"POST /public/hc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n"
                                 + HIDDEN,
    "a Content-Length with a sign": b"POST /public/hc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: +0\r\n\r\n"
                                    + HIDDEN,
    "a chunk size that is not hex": b"POST /public/hc HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked"
                                    b"\r\n\r\nzz\r\n\r\n" + HIDDEN,
    "a chunk size over 2^64": b"POST /public/hc HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                              b"1FFFFFFFFFFFFFFFF\r\nx\r\n0\r\n\r\n" + HIDDEN,
    "a space before the header colon": b"POST /public/hc HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding : chunked"
                                       b"\r\n\r\n0\r\n\r\n" + HIDDEN,
    "a bare LF in a header value": b"GET /public/hc HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\nTransfer-Encoding: "
                                   b"chunked\r\n\r\n0\r\n\r\n" + HIDDEN,
    "a NUL in a header value": b"GET /public/hc HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\x00b\r\n\r\n" + HIDDEN,
    "an obsolete line folding": b"GET /public/hc HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\r\n b\r\n\r\n" + HIDDEN,
    "an invalid method": b"G(T /public/hc HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + HIDDEN,
    "an HTTP/9.9 request line": b"GET /public/hc HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n" + HIDDEN,
}


@pytest.mark.parametrize("case", sorted(FRAMING))
def test_ambiguous_framing_is_400_and_nothing_after_it_is_answered(server: Server, case: str) -> None:
    answer = ask(server, FRAMING[case])  # read_answer fails on any byte after this one answer
    assert "malformed HTTP request" in answer.envelope(400)["detail"] and answer.closed
    still_serving(server)


# ---- encodings and bodies -------------------------------------------------------------------------------------

def test_non_utf8_bytes_in_path_header_and_body_are_4xx(server: Server) -> None:
    token = {"Authorization": server.token()}
    assert 400 <= ask(server, b"GET /v1/spv-requests/\xff\xfe HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").status < 500
    assert ask(server, request("GET", "/v1/spv-requests/%FF%FE", token)).status == 404
    assert ask(server, b"GET /v1/spv-requests HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \xff\xfe\r\n"
                       b"\r\n").envelope(401)
    body = b'{"investors": [{"partnerInvestorId": "\xff\xfe"}]}'
    assert ask(server, request("POST", "/v1/investors", {**token, "Content-Type": "application/json"},
                               body)).envelope(400)


def test_huge_and_deep_json_and_broken_multipart_are_4xx_over_the_wire(server: Server) -> None:
    before = rss()
    token = {"Authorization": server.token(), "Content-Type": "application/json"}
    huge = request("POST", "/v1/investors", token, b'{"investors": ["' + b"x" * (4 * MiB) + b'"]}')
    assert ask(server, huge).envelope(413)
    deep = request("POST", "/v1/investors", token, b'{"investors": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert ask(server, deep).envelope(400)
    multipart = {"Authorization": server.token(), "Content-Type": "multipart/form-data; boundary=b"}
    for body in (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.pdf\"\r\n\r\n%PDF-",  # no end
                 b"no boundary at all", b"--b--\r\n"):
        assert 400 <= ask(server, request("POST", "/v1/spvs/spv_none/subscription/p_none/forms", multipart,
                                          body)).status < 500
    assert rss() - before < 3 * RSS_BOUND_PER_CLIENT, (before, rss())
    still_serving(server)


# ---- the control plane's guard --------------------------------------------------------------------------------

def _partners(server: Server, host: str) -> Answer:
    return ask(server, request("GET", "/_mock/partners", host=host))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST:1", "127.8.9.10:80", "[::1]:8080"])
def test_the_control_plane_answers_loopback_hosts(server: Server, host: str) -> None:
    assert _partners(server, host).status == 200


def test_the_control_plane_answers_its_public_url_host(server: Server) -> None:
    assert _partners(server, server.url.removeprefix("http://")).status == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "localhost.evil.example",
                                  "127.0.0.1.nip.io", "[::2]", "0.0.0.0"])
def test_a_rebinding_host_is_refused_on_the_control_plane(server: Server, host: str) -> None:
    answer = _partners(server, host)
    assert "control plane refused for Host" in answer.envelope(403)["detail"]
    assert b"whsec_" not in answer.body


def test_a_foreign_host_still_reaches_the_partner_api(server: Server) -> None:
    assert ask(server, request("GET", "/public/hc", host="api.partner.example")).status == 200


def test_a_control_request_without_host_is_400(server: Server) -> None:
    assert ask(server, b"GET /_mock/partners HTTP/1.0\r\n\r\n").envelope(400)


def _reset(server: Server, headers: dict[str, str], body: bytes = b"{}") -> Answer:
    return ask(server, request("POST", "/_mock/reset", {"Content-Type": "application/json", **headers}, body))


def _investor_count(server: Server) -> int:
    row = server.app.state.rt.store.one("SELECT COUNT(*) AS n FROM investors")
    assert row is not None
    return int(row["n"])


def _add_investor(server: Server) -> None:
    row = {"partnerInvestorId": f"guard-{_investor_count(server)}", "email": "g@example.com", "firstName": "G",
           "lastName": "H", "dateOfBirth": "1980-01-01"}
    body = json.dumps({"investors": [row]}).encode()
    answer = ask(server, request("POST", "/v1/investors", {"Authorization": server.token(),
                                                           "Content-Type": "application/json"}, body))
    assert answer.status in (200, 201, 207), answer.body


@pytest.mark.parametrize(("headers", "body", "reason"), [
    ({"Origin": "http://evil.example"}, b"{}", "from Origin"),
    ({"Origin": "null"}, b"{}", "from Origin"),
    ({"Origin": "http://localhost:1"}, b"{}", "from Origin"),
    ({"Content-Type": "text/plain"}, b"{}", "Content-Type text/plain"),
    ({"Content-Type": "application/x-www-form-urlencoded"}, b"keepPartners=true", "Content-Type application/x-www"),
    ({"Content-Type": "multipart/form-data; boundary=x"}, b"--x--\r\n", "Content-Type multipart/form-data"),
    ({"Content-Type": "Text/Plain; charset=utf-8", "Origin": "http://127.0.0.1"}, b"{}", "Content-Type text/plain"),
])
def test_cross_site_writes_to_the_control_plane_are_refused_and_change_nothing(
        server: Server, headers: dict[str, str], body: bytes, reason: str) -> None:
    _add_investor(server)
    count = _investor_count(server)
    answer = _reset(server, headers, body)
    assert reason in answer.envelope(403)["detail"]
    assert _investor_count(server) == count


def test_scripts_and_same_origin_pages_may_write(server: Server) -> None:
    for headers in ({}, {"Origin": server.url}, {"Origin": server.url.upper()}):
        _add_investor(server)
        assert _reset(server, {**headers}, b'{"keepPartners": true}').status == 200
        assert _investor_count(server) == 0
    localhost = {"Origin": f"http://localhost:{server.port}"}
    answer = ask(server, request("POST", "/_mock/reset", {"Content-Type": "application/json", **localhost},
                                 b'{"keepPartners": true}', host=f"localhost:{server.port}"))
    assert answer.status == 200
    assert ask(server, request("POST", "/_mock/reset")).status == 200  # no body at all


def test_reading_the_control_plane_with_a_foreign_origin_is_allowed_but_not_shared(server: Server) -> None:
    answer = ask(server, request("GET", "/_mock/state", {"Origin": "http://evil.example"}))
    assert answer.status == 200 and "access-control-allow-origin" not in answer.headers
