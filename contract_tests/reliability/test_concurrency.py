"""Concurrency over real HTTP: 100 requests in flight at once against a live uvicorn server on loopback.

One Idempotency-Key sent 100 times at once makes exactly one resource and one event, and every answer is that
resource's 201 body, byte for byte: a write never yields to the event loop between reserving its key and storing its
answer, so a concurrent duplicate always finds the answer stored and replays it (the "in progress" 409 needs a
write still running, which ``test_idempotency.py`` stages directly). 100 distinct writes at
once make 100 resources with 100 events and lose none. Racing writes on one resource (100 cancels of one request,
100 subscriptions for one person, 100 onboardings of one partnerInvestorId) move it exactly once. The request
journal records each of the 100 identical calls once, with the status its client saw.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from support import SAMPLE_ATTRIBUTES, approved_spv, bearer, investor, live_server, runtime, settings

from mock_server.app import create_app

N = 100
SPV_BODY = {"templateId": "syndicate_secondary", "templateVersion": "1.0.0", "attributes": SAMPLE_ATTRIBUTES}
Call = tuple[str, str, dict[str, Any], dict[str, str]]  # method, path, JSON body, extra headers


@pytest.fixture
def server() -> Iterator[tuple[str, Starlette]]:
    with live_server(lambda url: create_app(settings(public_url=url))) as served:
        yield served


def fire(url: str, headers: dict[str, str], calls: list[Call]) -> list[httpx.Response]:
    """Send every call at once, each on its own connection, and return the answers in call order."""

    async def run() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=len(calls), max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
            return list(await asyncio.gather(*(
                client.request(method, path, json=body, headers={**headers, **extra})
                for method, path, body, extra in calls)))

    return asyncio.run(run())


def count(app: Starlette, sql: str, *args: Any) -> int:
    row = runtime(app).store.one(f"SELECT COUNT(*) AS n FROM ({sql})", *args)
    assert row is not None
    return int(row["n"])


def event_count(app: Starlette, event_type: str) -> int:
    return count(app, "SELECT 1 FROM events WHERE event_type = ?", event_type)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)  # polling a condition with a deadline


def journal(app: Starlette, operation_id: str) -> Counter[int]:
    rows = runtime(app).store.all("SELECT status FROM journal WHERE operation_id = ?", operation_id)
    return Counter(r["status"] for r in rows)


def test_one_key_sent_100_times_at_once_makes_one_resource(server: tuple[str, Starlette]) -> None:
    url, app = server
    answers = fire(url, bearer(app), [("POST", "/v1/spv-requests", SPV_BODY, {"Idempotency-Key": "same"})] * N)
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {201: N}, statuses
    created = {a.content for a in answers}
    assert len(created) == 1, "every answer is the one stored answer, byte for byte"
    slug = json.loads(created.pop())["spvRequestSlug"]
    assert count(app, "SELECT 1 FROM spv_requests") == 1
    assert runtime(app).store.one("SELECT slug FROM spv_requests") == {"slug": slug}
    assert event_count(app, "spv_request.created") == 1
    assert count(app, "SELECT 1 FROM idempotency WHERE key = 'same' AND state = 'done'") == 1
    wait_for(lambda: sum(journal(app, "createSpvRequest").values()) == N, "the journal to record every call")
    assert journal(app, "createSpvRequest") == statuses


def test_100_distinct_writes_at_once_lose_nothing(server: tuple[str, Starlette]) -> None:
    url, app = server
    calls: list[Call] = [("POST", "/v1/spv-requests", SPV_BODY, {"Idempotency-Key": f"k{i}"}) for i in range(N)]
    answers = fire(url, bearer(app), calls)
    assert [a.status_code for a in answers] == [201] * N
    slugs = {a.json()["spvRequestSlug"] for a in answers}
    assert len(slugs) == N
    stored = {r["slug"] for r in runtime(app).store.all("SELECT slug FROM spv_requests")}
    assert stored == slugs
    assert event_count(app, "spv_request.created") == N
    assert count(app, "SELECT 1 FROM deliveries") == N  # one outbox row per event
    assert count(app, "SELECT 1 FROM idempotency WHERE state = 'done'") == N
    with httpx.Client(base_url=url, headers=bearer(app)) as client:
        listed = client.get("/v1/spv-requests", params={"perPage": 100}).json()
    assert listed["count"] == N and {item["spvRequestSlug"] for item in listed["documents"]} == slugs


def test_100_distinct_investors_at_once_each_get_their_own_person(server: tuple[str, Starlette]) -> None:
    url, app = server
    rows = [{"partnerInvestorId": f"inv-{i}", "email": f"p{i}@example.com", "firstName": "P", "lastName": str(i),
             "dateOfBirth": "1980-01-01"} for i in range(N)]
    answers = fire(url, bearer(app), [("POST", "/v1/investors", {"investors": [row]}, {}) for row in rows])
    results = [a.json()["results"][0] for a in answers]
    assert [r["status"] for r in results] == ["created"] * N
    assert [r["partnerInvestorId"] for r in results] == [row["partnerInvestorId"] for row in rows]
    assert len({r["zestPersonId"] for r in results}) == N
    assert count(app, "SELECT 1 FROM investors") == N == event_count(app, "investor.created")


def test_racing_onboardings_of_one_investor_create_it_once(server: tuple[str, Starlette]) -> None:
    url, app = server
    row = {"partnerInvestorId": "dup", "email": "d@example.com", "firstName": "D", "lastName": "U",
           "dateOfBirth": "1980-01-01"}
    answers = fire(url, bearer(app), [("POST", "/v1/investors", {"investors": [row]}, {})] * N)
    results = [a.json()["results"][0] for a in answers]
    assert Counter(r["status"] for r in results) == {"created": 1, "already_exists": N - 1}
    assert len({r["zestPersonId"] for r in results}) == 1
    assert count(app, "SELECT 1 FROM investors") == 1 == event_count(app, "investor.created")


def test_racing_cancels_of_one_request_cancel_it_once(server: tuple[str, Starlette]) -> None:
    url, app = server
    headers = bearer(app)
    with httpx.Client(base_url=url, headers=headers) as client:
        created = client.post("/v1/spv-requests", json=SPV_BODY, headers={"Idempotency-Key": "c"}).json()
    slug = created["spvRequestSlug"]
    answers = fire(url, headers, [("DELETE", f"/v1/spv-requests/{slug}", {}, {})] * N)
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {200: 1, 409: N - 1}, statuses
    assert all(a.json()["code"] == "conflict" for a in answers if a.status_code == 409)
    assert runtime(app).store.one("SELECT status FROM spv_requests") == {"status": "cancelled"}
    assert event_count(app, "spv_request.cancelled") == 1


def test_racing_subscriptions_for_one_person_open_one(server: tuple[str, Starlette]) -> None:
    url, app = server
    headers = bearer(app)
    with httpx.Client(base_url=url, headers=headers) as client:
        spv = approved_spv(client, headers)  # type: ignore[arg-type]
        person = investor(client, headers)  # type: ignore[arg-type]
    vehicle = spv["materialisedRefs"]["vehicleSlug"]
    row = {"zestPersonId": person, "lumpSum": {"currency": "USD", "value": "100.00"},
           "shareClassSlug": spv["feesAndCarry"]["shareClasses"][0]["slug"]}
    answers = fire(url, headers, [("POST", f"/v1/spvs/{vehicle}/subscriptions", {"subscriptions": [row]}, {})] * N)
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {201: 1, 409: N - 1}, statuses
    assert count(app, "SELECT 1 FROM subscriptions") == 1 == event_count(app, "subscription.created")
