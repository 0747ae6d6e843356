"""Delivery lanes under a hostile receiver: ``.venv/bin/python bench/lanes.py``.

Partner A's receiver accepts connections and never answers; 16,000 deliveries are queued for A. Partner B's
receiver is healthy. Printed, each beside its target:

- CPU of an idle mock over 10 s (nothing queued), and of the same mock with A's 16,000 deliveries queued;
- the mock's RSS with A's queue (and its peak);
- B's delivery latency (wall time from B's API call to B's receiver counting the POST), in the background and
  while a ``POST /_mock/clock/advance`` is walking A's queue.

A report, not a test: the exit status is 0 even when a target is missed. Figures move from machine to machine.
"""

from __future__ import annotations

import asyncio
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from procs import Mock, cpu_seconds, memory, running_mock, running_receiver

QUEUED = 16_000
BATCH = 500
IDLE_WINDOW_S = 10.0
B_SAMPLES = 5


class HangingReceiver:
    """Accepts, reads, never answers: every attempt runs into the mock's deadline."""

    def __init__(self) -> None:
        self.connections = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.port = 0

        async def serve() -> None:
            server = await asyncio.start_server(self._hold, "127.0.0.1", 0, backlog=4096)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            await server.serve_forever()

        threading.Thread(target=self.loop.run_until_complete, args=(serve(),), daemon=True).start()
        ready.wait(10)
        self.url = f"http://127.0.0.1:{self.port}/hang"

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        while await reader.read(65536):
            pass
        writer.close()


def cpu_share(pid: int, seconds: float) -> float:
    """Share of one core the process used over ``seconds`` of wall time."""
    before, started = cpu_seconds(pid), time.perf_counter()
    time.sleep(seconds)  # a measurement window, not a wait for work
    return (cpu_seconds(pid) - before) / (time.perf_counter() - started)


def b_latency(mock: Mock, token: str, received: Callable[[], int]) -> float:
    """Wall seconds from B's create to B's receiver counting one more POST."""
    seen = received()
    started = time.perf_counter()
    mock.call("POST", "/v1/spv-requests", headers={"Authorization": f"Bearer {token}",
                                                   "Idempotency-Key": os.urandom(8).hex()},
              json={"templateId": "syndicate_secondary", "templateVersion": "1.0.0",
                    "attributes": {"underlyingCompanySlug": "co_acme", "currency": "USD",
                                   "shareClasses": [{"name": "A", "managementFeePercent": "2.0",
                                                     "carryPercent": "20.0"}]}})
    while received() <= seen:
        if time.perf_counter() - started > 60:
            return float("inf")
        time.sleep(0.005)  # polling the receiver's counter
    return time.perf_counter() - started


def line(label: str, value: str, target: str, met: bool) -> None:
    print(f"  {label:<58} {value:>12}   target {target:<10} {'met' if met else 'MISSED'}")


def main() -> int:
    print(f"bench/lanes.py on {platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}")
    hanging = HangingReceiver()
    log_dir = Path(tempfile.mkdtemp(prefix="zest-lanes-"))
    with running_receiver(200) as healthy, running_mock(log_dir, "lanes", ("--webhook-url", hanging.url)) as mock:
        idle = cpu_share(mock.pid, IDLE_WINDOW_S)
        line("idle mock CPU over 10 s (share of a core)", f"{idle:.2%}", "< 1 %", idle < 0.01)
        mock.call("POST", "/_mock/partners", json={"clientId": "partner-b", "tenantSlug": "b",
                                                   "webhookUrl": healthy.url})
        b_token = mock.call("POST", "/_mock/tokens", json={"clientId": "partner-b"})["accessToken"]
        for batch in range(QUEUED // BATCH):
            mock.create_investors(f"a{batch}", BATCH)
        queued = cpu_share(mock.pid, IDLE_WINDOW_S)
        line(f"CPU with {QUEUED:,} deliveries queued for a hanging receiver", f"{queued:.2%}", "-", True)
        samples = [b_latency(mock, b_token, healthy.received) for _ in range(B_SAMPLES)]
        print("  samples:", ", ".join(f"{s:.3f}" for s in samples))
        background = max(samples)
        line("partner B's delivery latency, background (max of 5)", f"{background:.3f} s", "<= 1 s",
             background <= 1)
        walker = threading.Thread(target=lambda: mock.client.post("/_mock/clock/advance", json={"seconds": 31},
                                                                  timeout=3600), daemon=True)
        walker.start()
        during = max(b_latency(mock, b_token, healthy.received) for _ in range(B_SAMPLES))
        line("partner B's delivery latency during an advance (max of 5)", f"{during:.3f} s", "<= 1 s", during <= 1)
        mem = memory(mock.pid)
        line(f"RSS with {QUEUED:,} queued (peak)", f"{mem.rss_kib / 1024:.0f} MB ({mem.hwm_kib / 1024:.0f})",
             "< 150 MB", mem.hwm_kib / 1024 < 150)
        print(f"  hanging receiver: {hanging.connections} connections accepted (the lane's bound holds the rest)")
        mock.call("POST", "/_mock/reset", json={})  # a new epoch: the advance's remaining work is dropped
        walker.join(60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
