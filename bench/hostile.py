"""Hostile clients against ``zest-mock serve``: what they cost the server and whether they slow anyone else.

One fresh mock (``running_mock``, so the limits of ``mock_server/http/limits.py`` are the shipped defaults). A normal
client times ``GET /v1/oauth2/info`` requests one after another on one kept-alive connection, first alone, then while
500 slowloris connections (each sends a partial head, then one more header line every second, and reconnects when
cut off) and one endless-header client (streams one header value as fast as the socket takes it, reconnecting when
cut off) are attacking. RSS comes from ``/proc/<pid>/status``: before, during (peak) and after the attack, divided
per hostile client. Standalone: ``python bench/hostile.py``; also the ``hostile`` group of ``bench/run.py``.
"""

from __future__ import annotations

import http.client
import selectors
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from procs import Mock, reset_peak, running_mock

SLOWLORIS = 500
REQUESTS = 2000
MB = 1_000_000
KIB = 1024
P99_TARGET_MS = 50.0
RSS_TARGET_MB = 20.0


def _timed_requests(mock: Mock, count: int) -> list[float]:
    """Milliseconds per request, sequential on one kept-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", mock.port, timeout=30)
    headers = {"Authorization": f"Bearer {mock.token()}"}
    times: list[float] = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            conn.request("GET", "/v1/oauth2/info", headers=headers)
            response = conn.getresponse()
            response.read()
            times.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                raise RuntimeError(f"normal client got {response.status}")
    finally:
        conn.close()
    return times


def _quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


class Attack:
    """500 slowloris connections and one endless header, each reconnecting when the server cuts it off."""

    def __init__(self, port: int, slowloris: int) -> None:
        self.port, self.slowloris = port, slowloris
        self.stop = threading.Event()
        self.cut_slowloris = 0  # connections the server ended (with a 408 or a close)
        self.answers: dict[bytes, int] = {}
        self.endless_connections = 0
        self.endless_bytes = 0
        self.open_slowloris = 0
        self.threads = [threading.Thread(target=self._slowloris, daemon=True),
                        threading.Thread(target=self._endless, daemon=True)]

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        sock.sendall(b"GET /public/hc HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        sock.setblocking(False)
        return sock

    def _slowloris(self) -> None:
        selector = selectors.DefaultSelector()
        for _ in range(self.slowloris):
            selector.register(self._connect(), selectors.EVENT_READ)
        self.open_slowloris = self.slowloris
        next_line = time.monotonic() + 1
        while not self.stop.is_set():
            for key, _ in selector.select(timeout=0.2):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                if data.startswith(b"HTTP/1.1 "):
                    self.answers[data[9:12]] = self.answers.get(data[9:12], 0) + 1
                selector.unregister(sock)
                sock.close()
                self.cut_slowloris += 1
                selector.register(self._connect(), selectors.EVENT_READ)
            if time.monotonic() >= next_line:
                next_line += 1
                for key in list(selector.get_map().values()):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    try:
                        sock.send(b"X-Still-Here: 1\r\n")
                    except OSError:
                        pass
        for key in list(selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]

    def _endless(self) -> None:
        chunk = b"e" * (64 * KIB)
        while not self.stop.is_set():
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            self.endless_connections += 1
            try:
                sock.sendall(b"GET /public/hc HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Endless: ")
                while not self.stop.is_set():
                    sock.sendall(chunk)
                    self.endless_bytes += len(chunk)
            except OSError:
                pass
            finally:
                sock.close()

    @contextmanager
    def running(self) -> Iterator[Attack]:
        for thread in self.threads:
            thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            for thread in self.threads:
                thread.join(timeout=30)


def measure(log_dir: Path) -> list[dict[str, Any]]:
    """The figures, as keyword arguments of ``run.Figure``."""
    with running_mock(log_dir, "hostile") as mock:
        _timed_requests(mock, 200)  # warm up
        alone = _timed_requests(mock, REQUESTS)
        before = mock.memory()
        reset_peak(mock.pid)
        attack = Attack(mock.port, SLOWLORIS)
        with attack.running():
            while attack.open_slowloris < SLOWLORIS:
                time.sleep(0.05)  # waiting for the attacker thread to open its connections
            during = _timed_requests(mock, REQUESTS)
            attacked = mock.memory()
            time.sleep(12)  # past the 10 s header timeout: every slowloris connection has been cut off once
            late = _timed_requests(mock, REQUESTS // 4)
            peak = mock.memory()
        time.sleep(1)
        after = mock.memory()
    clients = SLOWLORIS + 1
    per_client_mb = max(0, peak.hwm_kib - before.rss_kib) * KIB / MB / clients
    p50a, p99a = _quantile(alone, 50), _quantile(alone, 99)
    p50d, p99d = _quantile(during, 50), _quantile(during, 99)
    p99late = _quantile(late, 99)
    answers = {k.decode(): v for k, v in attack.answers.items()}
    print(f"  alone p50/p99 {p50a:.1f}/{p99a:.1f} ms; under attack {p50d:.1f}/{p99d:.1f} ms, after the first "
          f"cut-offs p99 {p99late:.1f} ms; RSS {before.rss_kib * KIB / MB:.0f} -> {attacked.rss_kib * KIB / MB:.0f} "
          f"MB (peak {peak.hwm_kib * KIB / MB:.0f}), {after.rss_kib * KIB / MB:.0f} MB after; endless client "
          f"{attack.endless_connections} connections, {attack.endless_bytes / MB:.0f} MB sent; slowloris cut "
          f"{attack.cut_slowloris} times, answers {answers}")
    worst_p99 = max(p99d, p99late)
    return [
        {"label": f"normal client p99 while {SLOWLORIS} slowloris + 1 endless header are open (alone)",
         "shown": f"{worst_p99:.1f} ms (alone {p99a:.1f} ms)", "target": f"< {P99_TARGET_MS:.0f} ms",
         "met": worst_p99 < P99_TARGET_MS, "value": round(worst_p99, 2), "unit": "ms",
         "detail": {"alone_p50_ms": round(p50a, 2), "alone_p99_ms": round(p99a, 2), "attack_p50_ms": round(p50d, 2),
                    "attack_p99_ms": round(p99d, 2), "after_cutoffs_p99_ms": round(p99late, 2)}},
        {"label": f"RSS per hostile client ({clients} of them), peak growth / clients",
         "shown": f"{per_client_mb * 1000:.0f} kB (RSS {before.rss_kib * KIB / MB:.0f} -> peak "
                  f"{peak.hwm_kib * KIB / MB:.0f} MB, {after.rss_kib * KIB / MB:.0f} MB after)",
         "target": f"< {RSS_TARGET_MB:.0f} MB", "met": per_client_mb < RSS_TARGET_MB,
         "value": round(per_client_mb, 3), "unit": "MB",
         "detail": {"endless_connections": attack.endless_connections, "endless_mb_sent":
                    round(attack.endless_bytes / MB, 1), "slowloris_cut": attack.cut_slowloris,
                    "slowloris_answers": answers}},
    ]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="zest-bench-") as tmp:
        for figure in measure(Path(tmp)):
            verdict = "-" if figure["met"] is None else "yes" if figure["met"] else "no"
            print(f"{figure['label']}: {figure['shown']} (target {figure['target']}, met {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
