"""A webhook receiver for tests: a real HTTP server on loopback that records every delivery and answers as told,
plus an independent signature verifier written from the Zest docs (not from the mock's code)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def verify(header: str, raw_body: bytes, secret: str, now: float | None = None, tolerance: int = 300) -> bool:
    """Split on ',', then on the first '='; HMAC-SHA256 over ``t + '.' + raw body``; constant-time; 300 s window."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key.strip(), []).append(value.strip())
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", []))


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    wall: float


@dataclass
class Receiver:
    url: str = ""
    status: int = 200
    hang_seconds: float = 0.0
    secret: str | None = None  # when set, forged or stale signatures get a 400, as a correct receiver does
    gate: threading.Event | None = None  # when set, every request hangs until the gate opens
    after_answer: Any = None  # called after each answer went out (a test's kill -9, say)
    deliveries: list[Delivery] = field(default_factory=list)
    answered: int = 0  # requests answered so far (a hanging receiver has answered none)
    _server: ThreadingHTTPServer | None = None
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    def bodies(self) -> list[Any]:
        return [json.loads(d.body) for d in self.deliveries]

    def wait_for(self, count: int, timeout: float = 60.0) -> bool:
        """Wait until ``count`` requests have arrived (a hang guard, not a verdict on speed)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.deliveries) >= count, timeout)


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # the mock delivers concurrently; the default backlog of 5 drops connections


def start_receiver(receiver: Receiver) -> Receiver:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with receiver._arrived:
                receiver.deliveries.append(Delivery({k.lower(): v for k, v in self.headers.items()}, body,
                                                    time.time()))
                receiver._arrived.notify_all()
            if receiver.gate is not None:
                receiver.gate.wait(120)  # hang guard: a test that forgets to open the gate still ends
            if receiver.hang_seconds:
                time.sleep(receiver.hang_seconds)  # the receiver under test hangs; the mock must cut it off
            forged = receiver.secret and not verify(self.headers.get("Zest-Signature", ""), body, receiver.secret)
            self.send_response(400 if forged else receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.wfile.flush()
            receiver.answered += 1
            if receiver.after_answer is not None:
                receiver.after_answer()

        def log_message(self, *args: object) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/zest/webhooks"
    receiver._server = server
    return receiver


def stop_receiver(receiver: Receiver) -> None:
    if receiver._server:
        receiver._server.shutdown()
        receiver._server.server_close()
