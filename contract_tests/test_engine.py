"""The engine: per-partner delivery lanes, atomic job steps, reset and reseed as epochs, the advance cap and the
idempotency window's purge.

Lane isolation uses real receivers on loopback: partner A's receiver hangs (its requests wait on a gate the test
holds shut), partner B's answers at once. The verdicts are causal, not timed: B's event is delivered and recorded
while every one of A's attempts is still hanging (their 120 s deadline cannot have passed), so one partner's
hanging receiver held back nobody else.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from receiver import Receiver, start_receiver, stop_receiver
from starlette.testclient import TestClient
from support import SAMPLE_ATTRIBUTES, live_server, runtime, settings

from mock_server.app import create_app
from mock_server.clock import Clock, parse_instant
from mock_server.scheduler import Scheduler, pending, schedule
from mock_server.store import Store

SPV_BODY = {"templateId": "syndicate_secondary", "templateVersion": "1.0.0", "attributes": SAMPLE_ATTRIBUTES}
QUEUED_FOR_A = 300  # more than a lane runs at once (256), so A's lane is full and has a queue


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    hanging = start_receiver(Receiver(gate=threading.Event()))
    healthy = start_receiver(Receiver())
    try:
        yield hanging, healthy
    finally:
        assert hanging.gate is not None
        hanging.gate.set()
        stop_receiver(hanging)
        stop_receiver(healthy)


def create(http: httpx.Client, token: str) -> httpx.Response:
    return http.post("/v1/spv-requests", json=SPV_BODY,
                     headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())})


def token(http: httpx.Client, client_id: str) -> str:
    return str(http.post("/_mock/tokens", json={"clientId": client_id}).json()["accessToken"])


def attempts(http: httpx.Client, client_id: str) -> list[dict[str, Any]]:
    return list(http.get("/_mock/webhooks/deliveries", params={"clientId": client_id}).json()["items"])


@contextlib.contextmanager
def two_partners(hanging: Receiver, healthy: Receiver) -> Iterator[httpx.Client]:
    """A live mock whose dev partner (A) points at the hanging receiver, and a partner B at the healthy one."""
    def make(url: str) -> Any:
        return create_app(settings(webhook_url=hanging.url, webhook_timeout_seconds=120, public_url=url))

    with live_server(make) as (url, _), httpx.Client(base_url=url, timeout=150) as http:
        registered = http.post("/_mock/partners", json={"clientId": "partner-b", "tenantSlug": "b",
                                                        "webhookUrl": healthy.url})
        assert registered.status_code == 201, registered.text
        yield http


def test_a_hanging_receiver_never_delays_another_partners_delivery(receivers: tuple[Receiver, Receiver]) -> None:
    hanging, healthy = receivers
    with two_partners(hanging, healthy) as http:
        a, b = token(http, "dev-partner"), token(http, "partner-b")
        for _ in range(QUEUED_FOR_A):
            assert create(http, a).status_code == 201
        assert hanging.wait_for(256), "A's lane did not fill up"
        assert create(http, b).status_code == 201
        assert healthy.wait_for(1), "B's event never reached B's receiver"
        assert hanging.answered == 0, "B's delivery came only after A's receiver had answered"
        assert len(hanging.deliveries) == 256, "A's lane ran more (or fewer) attempts at once than its bound"
        assert hanging.gate is not None
        hanging.gate.set()
        assert http.post("/_mock/clock/advance", json={"seconds": 0}).status_code == 200
        assert [x["outcome"] for x in attempts(http, "partner-b")] == ["delivered"]
        assert len(attempts(http, "dev-partner")) == QUEUED_FOR_A


def test_an_advance_delivers_other_partners_while_one_receiver_hangs(receivers: tuple[Receiver, Receiver]) -> None:
    hanging, healthy = receivers
    healthy.status = hanging.status = 500
    with two_partners(hanging, healthy) as http:
        a, b = token(http, "dev-partner"), token(http, "partner-b")
        assert create(http, b).status_code == 201
        assert http.post("/_mock/clock/advance", json={"seconds": 0}).status_code == 200  # B's first attempt: 500
        healthy.status = 200  # B's retry, due at +30 s, will succeed
        for _ in range(QUEUED_FOR_A):
            assert create(http, a).status_code == 201
        assert hanging.wait_for(256)
        advance = threading.Thread(target=lambda: http.post("/_mock/clock/advance", json={"seconds": 31}))
        advance.start()
        assert healthy.wait_for(2), "B's retry never reached B during the advance"
        assert hanging.answered == 0, "B's retry waited for A's hanging receiver"
        assert hanging.gate is not None
        hanging.gate.set()  # let A's attempts answer so the advance can finish
        advance.join(timeout=150)
        assert not advance.is_alive()
        assert [(x["attempt"], x["outcome"]) for x in attempts(http, "partner-b")] == [
            (1, "failed"), (2, "delivered")]
        offsets = sorted({x["at"] for x in attempts(http, "dev-partner")})
        assert len(offsets) == 2, "A's chain did not keep its 0 / +30 s schedule"
        assert (parse_instant(offsets[1]) - parse_instant(offsets[0])).total_seconds() == 30


# -- idle lanes -------------------------------------------------------------------------------------------------


def test_an_idle_lane_sleeps_until_its_next_job_is_due() -> None:
    """Nothing polls: with a job due in an hour, a manual clock's lane waits to be woken, a realtime one an hour."""

    async def scenario(mode: str) -> float | None:
        store = Store()
        clock = Clock(mode, start=parse_instant("2026-05-07T12:00:00Z"), wall=lambda: 1_000_000.0)  # type: ignore[arg-type]
        scheduler = Scheduler(store, clock, 4)
        scheduler.start()
        schedule(store, "deliver", parse_instant("2026-05-07T13:00:00Z"), lane="p", key="d1")
        lane = scheduler.lanes["p"]
        wait = lane._step()
        await scheduler.stop()
        return wait

    assert asyncio.run(scenario("manual")) is None
    assert asyncio.run(scenario("realtime")) == 3600.0


# -- atomic job steps -------------------------------------------------------------------------------------------


class Crash(BaseException):
    """Stands for kill -9 at the worst moment: inside the transaction that records an attempt."""


def test_an_attempt_interrupted_before_its_commit_is_neither_recorded_nor_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    from mock_server.webhooks import dispatcher as dispatcher_module

    receiver = start_receiver(Receiver(status=500))
    real_finish, crashed = dispatcher_module.finish, threading.Event()

    def crash_once(store: Store, job: Any) -> None:
        if not crashed.is_set():
            crashed.set()
            raise Crash()
        real_finish(store, job)

    monkeypatch.setattr(dispatcher_module, "finish", crash_once)
    try:
        app = create_app(settings(webhook_url=receiver.url))
        rt = runtime(app)
        with TestClient(app) as client:  # the first life of the process: it "dies" inside the transaction
            assert _create_ok(client, _bearer(client))
            assert crashed.wait(60), "the delivery never reached its commit"
            assert client.get("/_mock/webhooks/deliveries").json()["items"] == []
            assert rt.store.one("SELECT status, attempts FROM deliveries") == {"status": "pending", "attempts": 0}
        with TestClient(app) as client:  # the restart: the job is still there and runs once
            assert client.post("/_mock/clock/advance", json={"seconds": 0}).status_code == 200
            recorded = client.get("/_mock/webhooks/deliveries").json()["items"]
            assert [(a["attempt"], a["outcome"]) for a in recorded] == [(1, "failed")]
            assert [job.key for job in pending(rt.store)] == [recorded[0]["deliveryId"]]
            assert pending(rt.store)[0].due_at == recorded[0]["nextAttemptAt"]
    finally:
        stop_receiver(receiver)


def test_a_job_that_raises_is_rescheduled_not_dropped() -> None:
    receiver = start_receiver(Receiver())
    try:
        app = create_app(settings(webhook_url=receiver.url))
        with TestClient(app) as client:
            rt = runtime(app)
            real, calls = rt.scheduler.handlers["deliver"], []

            async def flaky(job: Any) -> Any:
                calls.append(job.due_at)
                if len(calls) == 1:
                    raise RuntimeError("a bug in a handler")
                return await real(job)

            rt.scheduler.handlers["deliver"] = flaky
            _create_ok(client, _bearer(client))
            client.post("/_mock/clock/advance", json={"seconds": 0})
            assert rt.store.one("SELECT status FROM deliveries") == {"status": "pending"}
            assert client.post("/_mock/clock/advance", json={"seconds": 30}).status_code == 200
            assert [a["outcome"] for a in client.get("/_mock/webhooks/deliveries").json()["items"]] == ["delivered"]
            assert (parse_instant(calls[1]) - parse_instant(calls[0])).total_seconds() == 30
    finally:
        stop_receiver(receiver)


# -- reset and reseed -------------------------------------------------------------------------------------------


def test_nothing_in_flight_at_a_reset_is_recorded_into_the_fresh_state(receivers: tuple[Receiver, Receiver]) -> None:
    hanging, healthy = receivers
    with two_partners(hanging, healthy) as http:
        assert create(http, token(http, "dev-partner")).status_code == 201
        assert hanging.wait_for(1)
        assert http.post("/_mock/reset", json={"keepPartners": True}).status_code == 200
        assert hanging.gate is not None
        hanging.gate.set()
        assert http.post("/_mock/clock/advance", json={"seconds": 31}).status_code == 200
        state = http.get("/_mock/state").json()
        assert state["pendingJobs"] == 0
        assert attempts(http, "dev-partner") == []
        assert state["partners"]["dev-partner"]["deliveries"]["count"] == 0


def test_reseeding_live_state_never_hands_out_an_id_that_exists() -> None:
    with TestClient(create_app(settings(seed=7))) as client:
        headers = _bearer(client)
        first = _create_ok(client, headers)
        assert client.post("/_mock/seed", json={"seed": 7}).json() == {"seed": 7}
        second = _create_ok(client, headers)
        assert second != first
        rows = [{"partnerInvestorId": f"p{i}", "email": "a@example.com", "firstName": "A", "lastName": "B",
                 "dateOfBirth": "1985-04-12"} for i in range(2)]
        people = client.post("/v1/investors", json={"investors": rows[:1]}, headers=headers).json()["results"]
        client.post("/_mock/seed", json={"seed": 7})
        again = client.post("/v1/investors", json={"investors": rows[1:]}, headers=headers).json()["results"]
        assert again[0]["status"] == "created" and again[0]["zestPersonId"] != people[0]["zestPersonId"]


def test_advance_refuses_a_target_past_the_cap_and_the_instance_keeps_working() -> None:
    with TestClient(create_app(settings())) as client:
        refused = client.post("/_mock/clock/advance", json={"to": "9999-12-31T23:59:00Z"})
        assert refused.status_code == 400
        assert "315360000 seconds (10 years)" in refused.json()["detail"]
        assert client.post("/_mock/clock/advance", json={"seconds": 10 * 365 * 86400 + 1}).status_code == 400
        _create_ok(client, _bearer(client))


def test_idempotency_records_are_purged_once_their_window_has_passed() -> None:
    app = create_app(settings())
    with TestClient(app) as client:
        headers = _bearer(client)
        for _ in range(3):
            _create_ok(client, headers)
        store = runtime(app).store
        assert store.one("SELECT COUNT(*) AS n FROM idempotency") == {"n": 3}
        client.post("/_mock/clock/advance", json={"seconds": 23 * 3600})
        assert store.one("SELECT COUNT(*) AS n FROM idempotency") == {"n": 3}
        client.post("/_mock/clock/advance", json={"seconds": 2 * 3600})
        assert store.one("SELECT COUNT(*) AS n FROM idempotency") == {"n": 0}


def _bearer(client: TestClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.post('/_mock/tokens').json()['accessToken']}"}


def _create_ok(client: TestClient, headers: dict[str, str]) -> str:
    response = client.post("/v1/spv-requests", json=SPV_BODY, headers={**headers, "Idempotency-Key": str(uuid.uuid4())})
    assert response.status_code == 201, response.text
    return str(response.json()["spvRequestSlug"])


def test_a_state_file_of_the_previous_schema_opens_and_keeps_working(tmp_path: Any) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(path)) as old:  # jobs, journal, idempotency as earlier releases wrote them
        old.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, due_at TEXT NOT NULL, "
                    "kind TEXT NOT NULL, payload TEXT NOT NULL)")
        old.execute("CREATE TABLE journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, wall_at REAL, "
                    "method TEXT NOT NULL, path TEXT NOT NULL, operation_id TEXT, client_id TEXT, "
                    "idempotency_key TEXT, body_hash TEXT, status INTEGER NOT NULL, duration_ms REAL NOT NULL, "
                    "fault TEXT, resource TEXT)")
        old.execute("CREATE TABLE idempotency (client_id TEXT NOT NULL, key TEXT NOT NULL, body_hash TEXT NOT NULL, "
                    "state TEXT NOT NULL, status INTEGER, content_type TEXT, body BLOB, created_at TEXT NOT NULL, "
                    "expires_at TEXT NOT NULL, PRIMARY KEY (client_id, key))")
        old.commit()
    with TestClient(create_app(settings(state_path=path))) as client:
        _create_ok(client, _bearer(client))
        assert client.post("/_mock/clock/advance", json={"seconds": 0}).status_code == 200
        assert [r["operationId"] for r in client.get("/_mock/requests").json()["items"]] == ["createSpvRequest"]
