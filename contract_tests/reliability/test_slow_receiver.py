"""A hanging webhook receiver never slows the API.

50 deliveries hang in a receiver that answers only after the mock's attempt deadline (2 s here), while
``advance 0`` waits for them from a background thread. Meanwhile 200 partner API GETs are timed over one
keep-alive connection: their p99 stays far below the deadline, which it could not if a delivery blocked the event
loop even once. The measurement provably overlaps the hang (no attempt is on record before it ends), and afterwards
every one of the 50 attempts is a ``timeout`` cut off near the deadline, not after the receiver's full hang.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from receiver import Receiver
from starlette.applications import Starlette
from support import bearer, live_server, settings

from mock_server.app import create_app

DELIVERIES = 50
GETS = 200
DEADLINE_SECONDS = 2.0
HANG_SECONDS = 3.0  # longer than the mock's deadline: every attempt is cut off
P99_BOUND_SECONDS = 0.25
SECRET = "whsec_" + "5e" * 16


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)  # polling a condition with a deadline


def make_app(url: str) -> Starlette:
    return create_app(settings(public_url=url, webhook_timeout_seconds=DEADLINE_SECONDS))


def test_api_p99_stays_low_while_50_deliveries_hang(receiver: Receiver) -> None:
    receiver.hang_seconds = HANG_SECONDS
    assert receiver._server is not None
    receiver._server.socket.listen(128)  # room for 50 simultaneous connections (socketserver's default is 5)
    # One connection per call: the server's loop must accept it too, and the figure cannot depend on TCP_NODELAY
    # (a pre-bound socket of proto 0 leaves Nagle on: ~40 ms per kept-alive request, whatever the mock does).
    fresh = httpx.Limits(max_keepalive_connections=0)
    with live_server(make_app) as (url, app), httpx.Client(base_url=url, headers=bearer(app), timeout=10,
                                                           limits=fresh) as api:
        rows = [{"partnerInvestorId": f"slow-{i}", "email": f"s{i}@example.com", "firstName": "S", "lastName": "R",
                 "dateOfBirth": "1980-01-01"} for i in range(DELIVERIES)]
        onboarded = api.post("/v1/investors", json={"investors": rows})
        assert [r["status"] for r in onboarded.json()["results"]] == ["created"] * DELIVERIES
        pointed = api.put("/_mock/webhooks/endpoint", json={"url": receiver.url, "secret": SECRET})
        assert pointed.status_code == 200 and pointed.json()["resumedDeliveries"] == DELIVERIES

        ran: dict[str, Any] = {}
        waiting = threading.Thread(target=lambda: ran.update(
            httpx.post(f"{url}/_mock/clock/advance", json={"seconds": 0}, timeout=30).json()), daemon=True)
        waiting.start()
        wait_for(lambda: len(receiver.deliveries) == DELIVERIES, "all 50 deliveries to hang in the receiver", 5)

        hang_started = min(d.wall for d in receiver.deliveries)
        latencies = []
        for n in range(GETS):
            path = ("/v1/spv-requests", "/v1/oauth2/info", "/public/hc", f"/v1/spv-requests/svr_none{n}")[n % 4]
            started = time.perf_counter()
            response = api.get(path)
            latencies.append(time.perf_counter() - started)
            assert response.status_code in (200, 404), response.text
        measured_until = time.time()
        recorded_meanwhile = api.get("/_mock/webhooks/deliveries").json()["items"]

        waiting.join(timeout=DEADLINE_SECONDS + 10)
        assert not waiting.is_alive()
        attempts = api.get("/_mock/webhooks/deliveries").json()["items"]
        assert api.get("/v1/oauth2/info").json()["clientId"] == "dev-partner"

    p99 = statistics.quantiles(latencies, n=100)[98]
    assert measured_until - hang_started < DEADLINE_SECONDS and recorded_meanwhile == [], \
        "the GETs were timed while every delivery still hung"
    assert p99 < P99_BOUND_SECONDS, f"API p99 {p99 * 1000:.1f} ms while deliveries hang"
    assert "to" in ran  # advance 0 answered once the hung attempts (started by the background loop) were cut off
    assert len(attempts) == DELIVERIES
    assert {(a["outcome"], a["error"]) for a in attempts} == {("failed", "timeout")}
    assert all(DEADLINE_SECONDS * 1000 * 0.9 < a["durationMs"] < (DEADLINE_SECONDS + 1) * 1000 for a in attempts)
