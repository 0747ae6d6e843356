"""The request journal: what a partner API call leaves behind, what is never recorded, the filters, and the
middleware's own guarantees (client gone: 499; unexpected error: 500; its own failure never breaks a call)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import Message
from support import DEV, START, bearer, create_spv_request, runtime, settings

from mock_server.app import create_app
from mock_server.domain import journal
from mock_server.http.journaling import JournalMiddleware
from mock_server.runtime import Runtime


@pytest.fixture
def mock() -> Iterator[TestClient]:
    with TestClient(create_app(settings()), raise_server_exceptions=False) as test_client:
        yield test_client


def journaled(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/_mock/requests", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def test_a_created_spv_request_is_journaled_with_operation_client_key_and_status(mock: TestClient) -> None:
    response = create_spv_request(mock, bearer(mock.app), key="key-created-1")
    assert response.status_code == 201
    (entry,) = journaled(mock)
    assert entry["method"] == "POST" and entry["path"] == "/v1/spv-requests"
    assert entry["operationId"] == "createSpvRequest" and entry["clientId"] == DEV
    assert entry["idempotencyKey"] == "key-created-1" and entry["status"] == 201
    assert entry["at"] == START and entry["durationMs"] >= 0
    assert len(entry["bodyHash"]) >= 32 and entry["fault"] is None


def test_a_401_is_journaled_without_a_client(mock: TestClient) -> None:
    response = mock.get("/v1/spv-requests", headers={"Authorization": "Bearer not-a-token", "Idempotency-Key": "k"})
    assert response.status_code == 401
    (entry,) = journaled(mock)
    assert (entry["operationId"], entry["clientId"], entry["idempotencyKey"], entry["status"]) == (
        "listSpvRequests", None, "k", 401)


def test_control_and_system_calls_are_not_journaled(mock: TestClient) -> None:
    for path in ("/", "/public/hc", "/openapi.json", "/_mock/state", "/_mock/clock", "/_mock/openapi.json",
                 "/_mock/requests", "/v1"):
        mock.get(path)
    mock.post("/_mock/tokens", json={"clientId": DEV})
    assert journaled(mock) == []
    mock.get("/v1/no-such-route")
    (entry,) = journaled(mock)
    assert entry["status"] == 404 and entry["operationId"] is None


def test_the_time_is_simulated_now_at_the_start_of_the_call(mock: TestClient) -> None:
    mock.post("/_mock/clock/advance", json={"seconds": 3600})
    mock.get("/v1/oauth2/info", headers=bearer(mock.app))
    assert journaled(mock)[0]["at"] == "2026-05-07T13:00:00.000Z"


def test_filters_and_limit_give_the_latest_matching_calls_oldest_first(mock: TestClient) -> None:
    headers = bearer(mock.app)
    for n in range(3):
        create_spv_request(mock, headers, key=f"k-{n}")
    mock.get("/v1/spv-requests", headers=headers)
    mock.get("/v1/spv-requests")  # 401: no client
    assert [e["operationId"] for e in journaled(mock)] == ["createSpvRequest"] * 3 + ["listSpvRequests"] * 2
    assert [e["idempotencyKey"] for e in journaled(mock, operationId="createSpvRequest", limit=2)] == ["k-1", "k-2"]
    assert [e["status"] for e in journaled(mock, clientId=DEV, operationId="listSpvRequests")] == [200]
    assert journaled(mock, clientId="nobody") == []
    seqs = [e["seq"] for e in journaled(mock)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5


@pytest.mark.parametrize("limit", ["0", "-1", "x", "10001", "1.5"])
def test_a_bad_limit_is_refused(mock: TestClient, limit: str) -> None:
    response = mock.get("/_mock/requests", params={"limit": limit})
    assert response.status_code == 400 and response.json()["code"] == "invalid_request"


def test_an_injected_fault_is_journaled_with_its_label(mock: TestClient) -> None:
    rule = {"match": {"operationId": "listSpvRequests"}, "action": "error", "status": 503}
    assert mock.post("/_mock/faults", json=rule).status_code in (200, 201)
    assert mock.get("/v1/spv-requests", headers=bearer(mock.app)).status_code == 503
    (entry,) = journaled(mock)
    assert entry["status"] == 503 and entry["fault"] and entry["fault"].startswith("error")
    assert entry["operationId"] == "listSpvRequests" and entry["clientId"] == DEV


def test_the_journal_keeps_only_the_latest_rows(mock: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "KEEP", 3)
    monkeypatch.setattr(journal, "_PRUNE_EVERY", 2)
    for _ in range(10):
        mock.get("/v1/spv-requests")
    assert [e["seq"] for e in journaled(mock)] == [8, 9, 10]


def test_a_failing_journal_never_breaks_a_call(mock: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    runtime(mock.app).store.run("DROP TABLE journal")
    with caplog.at_level(logging.ERROR, logger="zest_mock.journal"):
        response = create_spv_request(mock, bearer(mock.app))
    assert response.status_code == 201
    assert "could not journal POST /v1/spv-requests" in caplog.text


# ---- the middleware at the ASGI level -----------------------------------------------------------------------------

def http_scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080), "state": {}}


def rows(rt: Runtime) -> list[dict[str, Any]]:
    return rt.store.all("SELECT * FROM journal ORDER BY seq")


def test_a_client_that_disconnects_before_the_answer_is_journaled_as_499() -> None:
    app = create_app(settings())
    auth = bearer(app)["Authorization"].encode()
    headers = [(b"authorization", auth), (b"content-type", b"application/json"), (b"content-length", b"200"),
               (b"idempotency-key", b"gone-1")]
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)  # a real server drops these once the client has gone

    asyncio.run(app(http_scope("POST", "/v1/spv-requests", headers), receive, send))
    (row,) = rows(runtime(app))
    runtime(app).store.conn.close()
    assert (row["status"], row["client_id"], row["idempotency_key"]) == (499, DEV, "gone-1")
    assert row["operation_id"] == "createSpvRequest"


@pytest.fixture
def bare() -> Iterator[tuple[Starlette, Runtime]]:
    app, rt = bare_app()
    yield app, rt
    rt.store.conn.close()


def bare_app() -> tuple[Starlette, Runtime]:
    async def boom(request: Request) -> Response:
        raise RuntimeError("boom")

    async def slow(request: Request) -> Response:
        await asyncio.sleep(30)
        return Response()

    app = Starlette(routes=[Route("/v1/boom", boom), Route("/v1/slow", slow)],
                    middleware=[Middleware(JournalMiddleware)])
    app.state.rt = rt = Runtime.build(settings())
    return app, rt


def test_an_unexpected_error_is_journaled_as_500(bare: tuple[Starlette, Runtime]) -> None:
    app, rt = bare
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/v1/boom").status_code == 500
    assert [(r["path"], r["status"]) for r in rows(rt)] == [("/v1/boom", 500)]


def test_a_cancelled_call_is_journaled_as_499(bare: tuple[Starlette, Runtime]) -> None:
    app, rt = bare

    async def receive() -> Message:
        await asyncio.sleep(60)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        pass

    async def cancelled() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(app(http_scope("GET", "/v1/slow", []), receive, send), 0.05)

    asyncio.run(cancelled())
    assert [(r["path"], r["status"]) for r in rows(rt)] == [("/v1/slow", 499)]


def test_an_app_without_a_runtime_is_passed_through() -> None:
    async def ok(request: Request) -> Response:
        return Response("ok")

    app = Starlette(routes=[Route("/v1/ok", ok)], middleware=[Middleware(JournalMiddleware)])
    with TestClient(app) as client:
        assert client.get("/v1/ok").text == "ok"
