"""A hanging webhook receiver never slows the API.

50 deliveries hang in a receiver that holds every one of them until the test releases it, while ``advance 0``
waits for them from a background thread. Meanwhile 200 partner API GETs are made, each on a fresh connection: all
of them are answered while every delivery still hangs (none is on record, none was released), which could not
happen if a delivery blocked the event loop even once; a blocked loop shows up as a GET that never returns (its
timeout is a hang guard, not a verdict). Released, the 50 deliveries are acknowledged and ``advance 0`` answers.
No wall-clock threshold is asserted: latency figures belong in ``bench/``. The cut-off at the attempt deadline is
``test_webhooks.py``'s.
"""

from __future__ import annotations

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
HANG_GUARD_SECONDS = 60.0  # the attempt deadline and every wait: far beyond what any GET should take
SECRET = "whsec_" + "5e" * 16


def wait_for(condition: Callable[[], bool], what: str, timeout: float = HANG_GUARD_SECONDS) -> None:
    """Poll ``condition`` until it holds, failing after ``timeout`` seconds (a hang guard)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)  # polling a condition with a deadline


def make_app(url: str) -> Starlette:
    return create_app(settings(public_url=url, webhook_timeout_seconds=HANG_GUARD_SECONDS))


def test_the_api_answers_while_50_deliveries_hang(receiver: Receiver) -> None:
    receiver.gate = threading.Event()
    assert receiver._server is not None
    receiver._server.socket.listen(128)  # room for 50 simultaneous connections (socketserver's default is 5)
    fresh = httpx.Limits(max_keepalive_connections=0)  # one connection per call: the loop must accept it too
    try:
        with live_server(make_app) as (url, app), httpx.Client(base_url=url, headers=bearer(app),
                                                               timeout=HANG_GUARD_SECONDS, limits=fresh) as api:
            rows = [{"partnerInvestorId": f"slow-{i}", "email": f"s{i}@example.com", "firstName": "S",
                     "lastName": "R", "dateOfBirth": "1980-01-01"} for i in range(DELIVERIES)]
            onboarded = api.post("/v1/investors", json={"investors": rows})
            assert [r["status"] for r in onboarded.json()["results"]] == ["created"] * DELIVERIES
            pointed = api.put("/_mock/webhooks/endpoint", json={"url": receiver.url, "secret": SECRET})
            assert pointed.status_code == 200 and pointed.json()["resumedDeliveries"] == DELIVERIES

            ran: dict[str, Any] = {}
            waiting = threading.Thread(target=lambda: ran.update(httpx.post(
                f"{url}/_mock/clock/advance", json={"seconds": 0}, timeout=HANG_GUARD_SECONDS * 2).json()),
                daemon=True)
            waiting.start()
            wait_for(lambda: len(receiver.deliveries) == DELIVERIES, "all 50 deliveries to hang in the receiver")

            for n in range(GETS):
                path = ("/v1/spv-requests", "/v1/oauth2/info", "/public/hc", f"/v1/spv-requests/svr_none{n}")[n % 4]
                response = api.get(path)
                assert response.status_code in (200, 404), response.text
            recorded_meanwhile = api.get("/_mock/webhooks/deliveries").json()["items"]
            assert recorded_meanwhile == [] and not receiver.gate.is_set(), \
                "all 200 GETs were answered while every delivery still hung"

            receiver.gate.set()
            waiting.join(timeout=HANG_GUARD_SECONDS)
            assert not waiting.is_alive() and "to" in ran  # advance 0 answered once the deliveries were answered
            attempts = api.get("/_mock/webhooks/deliveries").json()["items"]
            assert api.get("/v1/oauth2/info").json()["clientId"] == "dev-partner"
    finally:
        receiver.gate.set()
    assert len(attempts) == DELIVERIES
    assert {(a["outcome"], a["statusCode"]) for a in attempts} == {("delivered", 200)}
