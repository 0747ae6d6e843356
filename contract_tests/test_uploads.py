"""Signed-form and funding-receipt uploads: limits, types, order, content addressing, events and signed URLs.

Limits that TestClient cannot show (it reads a request body whole before the app sees it) are driven through the
ASGI interface directly, with a ``receive`` that counts what the app asked for, and once through real uvicorn.
"""

from __future__ import annotations

import asyncio
import json
import socket
import tracemalloc
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import python_multipart
from starlette.applications import Starlette
from starlette.testclient import TestClient
from support import START, bearer, events, live_server, runtime, settings, subscription

from mock_server.app import create_app
from mock_server.domain import uploads
from mock_server.errors import InvalidRequest
from mock_server.http.uploads import MAX_PARTS, StreamedForm

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SAMPLES = {name: (FIXTURES / name).read_bytes() for name in
           ("signed-form.pdf", "receipt.png", "receipt.jpg", "receipt.webp")}
PDF, PNG = SAMPLES["signed-form.pdf"], SAMPLES["receipt.png"]
LIMIT = 10 * 1024 * 1024
FUNDING = {"amount": "50000.00", "currency": "USD", "wireReference": "ACME-WIRE-20260507-9921"}
B = "zestboundary"


@pytest.fixture
def sub(client: TestClient, headers: dict[str, str]) -> tuple[str, str, str]:
    return subscription(client, headers)


def path(sub: tuple[str, str, str], kind: str) -> str:
    return f"/v1/spvs/{sub[0]}/subscription/{sub[1]}/{kind}"


def form(client: TestClient, headers: dict[str, str], sub: tuple[str, str, str], data: bytes = PDF,
         ctype: str = "application/pdf", name: str = "form.pdf") -> Any:
    return client.post(path(sub, "forms"), files={"file": (name, data, ctype)}, headers=headers)


def funding(client: TestClient, headers: dict[str, str], sub: tuple[str, str, str], data: bytes = PNG,
            ctype: str = "image/png", **fields: str) -> Any:
    return client.post(path(sub, "fundings"), files={"file": ("receipt", data, ctype)},
                       data={**FUNDING, **fields}, headers=headers)


def envelope(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["detail"]
    uuid.UUID(body["errorId"])
    return body


def sub_row(app: Starlette) -> dict[str, Any]:
    row = runtime(app).store.one("SELECT * FROM subscriptions")
    assert row is not None
    return row


def local(url: str) -> str:
    parts = urlsplit(url)
    assert url.startswith("http://localhost:8080/_mock/files/")
    return f"{parts.path}?{parts.query}"


def multipart(*parts: tuple[str, str | None, str | None, bytes], boundary: str = B, close: bool = True) -> bytes:
    """Hand-made multipart: (name, filename, content type, data) per part."""
    out = b""
    for name, filename, ctype, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        out += (f"Content-Type: {ctype}\r\n" if ctype else "").encode() + b"\r\n" + data + b"\r\n"
    return out + (f"--{boundary}--\r\n".encode() if close else b"")


# --- the happy paths and their events -----------------------------------------------------------------------------

def test_form_upload_stores_moves_status_and_emits(app: Starlette, client: TestClient, headers: dict[str, str],
                                                   sub: tuple[str, str, str]) -> None:
    response = form(client, headers, sub)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"subscriptionSlug", "spvSlug", "personId", "subscriptionFormUrl", "uploadedAt"}
    assert (body["spvSlug"], body["personId"], body["subscriptionSlug"], body["uploadedAt"]) == (*sub, START)
    assert sub_row(app)["status"] == "form_uploaded"
    (event,) = events(app, "signed_subscription_form.uploaded")
    assert event["occurredAt"] == START
    assert event["data"] == {"subscriptionSlug": sub[2], "spvSlug": sub[0], "personId": sub[1],
                             "partnerInvestorId": "acme-inv-1", "subscriptionFormUrl": body["subscriptionFormUrl"],
                             "uploadedAt": START}
    served = client.get(local(body["subscriptionFormUrl"]))
    assert served.status_code == 200 and served.content == PDF
    assert served.headers["content-type"] == "application/pdf"


def test_funding_upload_after_form(app: Starlette, client: TestClient, headers: dict[str, str],
                                   sub: tuple[str, str, str]) -> None:
    form(client, headers, sub)
    response = funding(client, headers, sub)
    assert response.status_code == 201, response.text
    body = response.json()
    assert {k: body[k] for k in FUNDING} == FUNDING and body["uploadedAt"] == START
    assert sub_row(app)["status"] == "funded"
    (event,) = events(app, "funding_receipt.uploaded")
    assert event["data"] == {"subscriptionSlug": sub[2], "spvSlug": sub[0], "personId": sub[1],
                             "partnerInvestorId": "acme-inv-1", "fundingReceiptUrl": body["fundingReceiptUrl"],
                             **FUNDING, "uploadedAt": START}
    assert client.get(local(body["fundingReceiptUrl"])).content == PNG


def test_wire_reference_alias(client: TestClient, headers: dict[str, str], sub: tuple[str, str, str]) -> None:
    form(client, headers, sub)
    data = {"amount": "10", "currency": "EUR", "wire_reference": "ref-1"}
    response = client.post(path(sub, "fundings"), files={"file": ("r.png", PNG, "image/png")}, data=data,
                           headers=headers)
    assert response.status_code == 201 and response.json()["wireReference"] == "ref-1"
    both = funding(client, headers, sub, wire_reference="ref-2")
    assert "not both" in envelope(both, 400, "invalid_request")["detail"]


@pytest.mark.parametrize(("name", "ctype"), [("signed-form.pdf", "application/pdf"), ("receipt.png", "image/png"),
                                             ("receipt.jpg", "image/jpeg"), ("receipt.webp", "image/webp")])
def test_each_accepted_type(client: TestClient, headers: dict[str, str], sub: tuple[str, str, str],
                            name: str, ctype: str) -> None:
    response = form(client, headers, sub, SAMPLES[name], f"{ctype}; name=x", name)
    assert response.status_code == 201, response.text
    assert client.get(local(response.json()["subscriptionFormUrl"])).headers["content-type"] == ctype


# --- size ---------------------------------------------------------------------------------------------------------

def test_exact_limit_accepted_one_more_byte_refused(app: Starlette, client: TestClient, headers: dict[str, str],
                                                    sub: tuple[str, str, str]) -> None:
    assert runtime(app).settings.upload_limit_bytes == LIMIT == 10485760
    exact = PDF + b"\0" * (LIMIT - len(PDF))
    assert form(client, headers, sub, exact).status_code == 201
    body = envelope(form(client, headers, sub, exact + b"\0"), 413, "payload_too_large")
    assert "10485760" in body["detail"]
    assert len(events(app, "signed_subscription_form.uploaded")) == 1


class Asgi:
    """One request straight into the ASGI app, with a body source whose consumption is counted."""

    def __init__(self, app: Starlette, chunks: Iterator[bytes], disconnect_after: int | None = None) -> None:
        self.app, self.chunks, self.disconnect_after = app, chunks, disconnect_after
        self.receive_calls = self.received = 0
        self.status = 0
        self.body = b""

    def post(self, target: str, headers: dict[str, str]) -> Asgi:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": target, "raw_path": target.encode(), "query_string": b"",
                 "root_path": "", "client": ("127.0.0.1", 1), "server": ("testserver", 80),
                 "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
        asyncio.run(self.app(scope, self._receive, self._send))
        return self

    async def _receive(self) -> dict[str, Any]:
        self.receive_calls += 1
        if self.disconnect_after is not None and self.receive_calls > self.disconnect_after:
            return {"type": "http.disconnect"}
        chunk = next(self.chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        self.received += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")


def endless_upload(total: int = 1024**3, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """A form upload claiming to be ``total`` bytes long, produced lazily."""
    yield multipart(("file", "big.pdf", "application/pdf", b""), close=False)[:-2] + b"%PDF-"
    for _ in range(total // chunk):
        yield b"\0" * chunk


def test_declared_length_over_limit_refused_before_reading(app: Starlette, sub: tuple[str, str, str]) -> None:
    headers = {**bearer(app), "content-type": f"multipart/form-data; boundary={B}", "content-length": str(1024**3)}
    call = Asgi(app, endless_upload()).post(path(sub, "forms"), headers)
    assert call.status == 413 and b'"payload_too_large"' in call.body
    assert call.receive_calls == 0


def test_streamed_body_over_limit_refused_midway_with_flat_memory(app: Starlette, sub: tuple[str, str, str]) -> None:
    headers = {**bearer(app), "content-type": f"multipart/form-data; boundary={B}"}  # chunked: no Content-Length
    tracemalloc.start()
    try:
        call = Asgi(app, endless_upload()).post(path(sub, "forms"), headers)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert call.status == 413 and b'"payload_too_large"' in call.body
    assert LIMIT < call.received <= LIMIT + 2 * 64 * 1024  # stopped right after the cap, not at 1 GiB
    assert peak < 4 * 1024 * 1024, peak  # 1 MiB spool in memory, the rest on disk
    assert runtime(app).store.one("SELECT COUNT(*) AS n FROM files") == {"n": 0}


def test_accepted_upload_is_streamed_into_the_store_and_back(app: Starlette, client: TestClient,
                                                              sub: tuple[str, str, str]) -> None:
    data = (PDF + bytes(range(256)) * (LIMIT // 256))[:LIMIT - 7]  # the limit, but not a whole number of chunks
    head = multipart(("file", "big.pdf", "application/pdf", b""), close=False)[:-2]
    body = [head, *(data[i:i + 64 * 1024] for i in range(0, len(data), 64 * 1024)), f"\r\n--{B}--\r\n".encode()]
    headers = {**bearer(app), "content-type": f"multipart/form-data; boundary={B}"}
    tracemalloc.start()
    try:
        call = Asgi(app, iter(body)).post(path(sub, "forms"), headers)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert call.status == 201, call.body
    assert peak < 4 * 1024 * 1024, peak  # the 1 MiB spool and a few chunks; never the file whole, nor a copy
    served = client.get(local(json.loads(call.body)["subscriptionFormUrl"]))
    assert served.status_code == 200 and served.headers["content-length"] == str(len(data))
    assert served.content == data


def test_disconnect_midway_changes_nothing(app: Starlette, sub: tuple[str, str, str]) -> None:
    headers = {**bearer(app), "content-type": f"multipart/form-data; boundary={B}"}
    call = Asgi(app, endless_upload(), disconnect_after=3).post(path(sub, "forms"), headers)
    assert call.status == 400
    assert sub_row(app)["status"] == "pending" and sub_row(app)["form_sha256"] is None
    assert runtime(app).store.one("SELECT COUNT(*) AS n FROM files") == {"n": 0}
    assert events(app, "signed_subscription_form.uploaded") == []


def test_real_server_refuses_declared_length_without_the_body() -> None:
    with live_server(lambda url: create_app(settings(public_url=url))) as (url, app), \
            httpx.Client(base_url=url) as http:
        headers = bearer(app)
        target = path(subscription(http, headers), "forms")  # type: ignore[arg-type]
        with socket.create_connection((urlsplit(url).hostname, urlsplit(url).port), timeout=10) as conn:
            conn.sendall((f"POST {target} HTTP/1.1\r\nHost: x\r\nAuthorization: {headers['Authorization']}\r\n"
                          f"Content-Type: multipart/form-data; boundary={B}\r\nContent-Length: 50000000\r\n\r\n")
                         .encode())
            answer = b""
            while b'"errorId"' not in answer:
                data = conn.recv(65536)
                assert data, answer
                answer += data
    assert answer.startswith(b"HTTP/1.1 413") and b'"payload_too_large"' in answer


# --- types --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "ctype", "detail"), [
    (PDF, "application/octet-stream", "not accepted"),
    (PDF, "text/plain", "not accepted"),
    (PDF, "", "not accepted"),
    (b"GIF89a" + PDF, "image/gif", "not accepted"),
    (PDF, "image/png", "content is application/pdf"),
    (PNG, "image/jpeg", "content is image/png"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "image/webp", "match none"),
    (b"hello, not a pdf", "application/pdf", "match none"),
    (b"", "application/pdf", "empty"),
])
def test_type_must_be_declared_and_sniffed(app: Starlette, client: TestClient, headers: dict[str, str],
                                           sub: tuple[str, str, str], data: bytes, ctype: str, detail: str) -> None:
    if ctype:
        response = form(client, headers, sub, data, ctype)
    else:  # no Content-Type on the part at all
        response = client.post(path(sub, "forms"), content=multipart(("file", "f.pdf", None, data)),
                               headers={**headers, "Content-Type": f"multipart/form-data; boundary={B}"})
    assert detail in envelope(response, 415, "unsupported_media_type")["detail"]
    assert sub_row(app)["status"] == "pending" and events(app, "signed_subscription_form.uploaded") == []


def test_sniffing_can_be_switched_off() -> None:
    app = create_app(settings(upload_sniffing=False))
    with TestClient(app) as client:
        headers = bearer(app)
        sub = subscription(client, headers)
        assert form(client, headers, sub, b"not really a pdf", "application/pdf").status_code == 201
        assert form(client, headers, sub, PDF, "text/plain").status_code == 415  # the declared type still counts


def test_sniff() -> None:
    assert [uploads.sniff(SAMPLES[n]) for n in SAMPLES] == ["application/pdf", "image/png", "image/jpeg",
                                                            "image/webp"]
    assert uploads.sniff(b"\x89PNG") is None and uploads.sniff(b"RIFF\0\0\0\0WAVE") is None


# --- order and state ----------------------------------------------------------------------------------------------

def test_funding_before_form_is_409(app: Starlette, client: TestClient, headers: dict[str, str],
                                    sub: tuple[str, str, str]) -> None:
    body = envelope(funding(client, headers, sub), 409, "conflict")
    assert "signed subscription form is not on record yet" in body["detail"]
    assert sub_row(app)["funding_sha256"] is None and events(app, "funding_receipt.uploaded") == []


def test_terminal_subscription_is_409(app: Starlette, client: TestClient, headers: dict[str, str],
                                      sub: tuple[str, str, str]) -> None:
    form(client, headers, sub)
    funding(client, headers, sub)
    assert client.post(f"/_mock/admin/subscriptions/{sub[2]}/complete").status_code == 200
    for response in (form(client, headers, sub, SAMPLES["receipt.jpg"], "image/jpeg"),
                     funding(client, headers, sub, SAMPLES["receipt.webp"], "image/webp")):
        assert "terminal status" in envelope(response, 409, "conflict")["detail"]
    assert sub_row(app)["status"] == "completed"


def test_identical_reupload_is_a_silent_201(app: Starlette, client: TestClient, headers: dict[str, str],
                                            sub: tuple[str, str, str]) -> None:
    first = form(client, headers, sub).json()
    paid = funding(client, headers, sub).json()
    rt = runtime(app)
    rt.clock.set_to(rt.clock.now() + timedelta(minutes=5))
    again, paid_again = form(client, headers, sub).json(), funding(client, headers, sub).json()
    assert again["uploadedAt"] == paid_again["uploadedAt"] == START
    assert urlsplit(again["subscriptionFormUrl"]).path == urlsplit(first["subscriptionFormUrl"]).path
    assert paid_again == {**paid, "fundingReceiptUrl": paid_again["fundingReceiptUrl"]}
    assert len(events(app, "signed_subscription_form.uploaded")) == len(events(app, "funding_receipt.uploaded")) == 1
    assert sub_row(app)["status"] == "funded"  # a form re-sent after funding never moves the Bid back


def test_different_content_replaces_and_emits_again(app: Starlette, client: TestClient, headers: dict[str, str],
                                                    sub: tuple[str, str, str]) -> None:
    first = form(client, headers, sub).json()
    rt = runtime(app)
    rt.clock.set_to(rt.clock.now() + timedelta(minutes=5))
    second = form(client, headers, sub, SAMPLES["receipt.jpg"], "image/jpeg").json()
    assert second["uploadedAt"] == "2026-05-07T12:05:00.000Z"
    assert urlsplit(second["subscriptionFormUrl"]).path != urlsplit(first["subscriptionFormUrl"]).path
    uploaded = events(app, "signed_subscription_form.uploaded")
    assert [e["data"]["uploadedAt"] for e in uploaded] == [START, "2026-05-07T12:05:00.000Z"]
    funding(client, headers, sub)
    funding(client, headers, sub, amount="50000.01")  # same receipt, corrected metadata: a new upload
    assert [e["data"]["amount"] for e in events(app, "funding_receipt.uploaded")] == ["50000.00", "50000.01"]
    third = form(client, headers, sub, SAMPLES["receipt.webp"], "image/webp")  # a new form after funding
    assert third.status_code == 201 and len(events(app, "signed_subscription_form.uploaded")) == 3
    assert sub_row(app)["status"] == "funded"  # replaced, but the Bid never moves back


def test_files_are_content_addressed(app: Starlette, client: TestClient, headers: dict[str, str],
                                     sub: tuple[str, str, str]) -> None:
    form(client, headers, sub)
    form(client, headers, sub, SAMPLES["receipt.png"], "image/png")
    form(client, headers, sub)  # back to the first bytes: a change of pointer, not a second copy
    rows = runtime(app).store.all("SELECT sha256, size FROM files ORDER BY size")
    assert [r["size"] for r in rows] == [len(PNG), len(PDF)]
    assert sub_row(app)["form_sha256"] == uploads.Upload.of("application/pdf", PDF).sha256


# --- signed URLs --------------------------------------------------------------------------------------------------

def test_signed_url_tampering_and_expiry(app: Starlette, client: TestClient, headers: dict[str, str],
                                         sub: tuple[str, str, str]) -> None:
    url = local(form(client, headers, sub).json()["subscriptionFormUrl"])
    other = local(form(client, headers, sub, PNG, "image/png").json()["subscriptionFormUrl"])
    target, query = url.split("?")
    sig = query.split("sig=")[1]
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    assert client.get(url).status_code == 200
    assert client.get(url.replace(sig, flipped)).json()["code"] == "forbidden"
    assert client.get(f"{other.split('?')[0]}?{query}").status_code == 403  # one file's signature on another
    assert client.get(target).status_code == 403
    assert client.get(url.replace("expires=", "expires=1")).status_code == 403
    for odd in ("sig=%C3%A9", "expires=%C2%B2&sig=" + sig, "expires=" + "9" * 40 + "&sig=" + sig):
        assert client.get(f"{target}?{odd}").status_code == 403
    rt = runtime(app)
    rt.clock.set_to(rt.clock.now() + timedelta(seconds=rt.settings.file_url_ttl_seconds - 1))
    assert client.get(url).status_code == 200
    rt.clock.set_to(rt.clock.now() + timedelta(seconds=1))
    assert "expired" in envelope(client.get(url), 403, "forbidden")["detail"]


# --- malformed requests -------------------------------------------------------------------------------------------

FILE_PART = ("file", "f.pdf", "application/pdf", PDF)


@pytest.mark.parametrize(("content_type", "body", "detail"), [
    ("application/json", b'{"file": "x"}', "must be multipart/form-data"),
    (None, multipart(FILE_PART), "must be multipart/form-data"),
    ("multipart/form-data", multipart(FILE_PART), "boundary"),
    (f"multipart/form-data; boundary={'x' * 71}", multipart(FILE_PART, boundary="x" * 71), "boundary"),
    (f"multipart/form-data; boundary={B}", b"just some garbage", "malformed"),
    (f"multipart/form-data; boundary={B}", b"", "truncated"),
    (f"multipart/form-data; boundary={B}", multipart(FILE_PART, close=False), "truncated"),
    (f"multipart/form-data; boundary={B}", multipart(FILE_PART)[:60], "truncated"),
    (f"multipart/form-data; boundary={B}", multipart(FILE_PART, FILE_PART), "more than once"),
    (f"multipart/form-data; boundary={B}",
     f"--{B}\r\nContent-Type: text/plain\r\n\r\nx\r\n--{B}--\r\n".encode(), "Content-Disposition"),
])
def test_malformed_multipart_is_400(app: Starlette, client: TestClient, headers: dict[str, str],
                                    sub: tuple[str, str, str], content_type: str | None, body: bytes,
                                    detail: str) -> None:
    extra = {"Content-Type": content_type} if content_type else {}
    response = client.post(path(sub, "forms"), content=body, headers={**headers, **extra})
    assert detail in envelope(response, 400, "invalid_request")["detail"]
    assert sub_row(app)["status"] == "pending"


@pytest.mark.parametrize(("parts", "detail"), [
    ([("amount", None, None, b"1" * 1025)], "over 1024 bytes"),
    ([("amount", None, None, b"\xff\xfe")], "not UTF-8"),
    ([("amount", None, None, b"1")] * 2, "more than once"),
])
def test_field_limits_are_400(client: TestClient, headers: dict[str, str], sub: tuple[str, str, str],
                              parts: list[tuple[str, str | None, str | None, bytes]], detail: str) -> None:
    response = client.post(path(sub, "fundings"), content=multipart(*parts),
                           headers={**headers, "Content-Type": f"multipart/form-data; boundary={B}"})
    assert detail in envelope(response, 400, "invalid_request")["detail"]


def test_part_count_is_capped() -> None:
    names = frozenset(f"f{i}" for i in range(60))  # more names than any operation takes, to reach the cap
    reader = StreamedForm(names, 100)
    parser = python_multipart.MultipartParser(B.encode(), reader.callbacks())  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match=f"more than {MAX_PARTS} parts"):
        parser.write(multipart(*[(f"f{i}", None, None, b"1") for i in range(MAX_PARTS + 1)]))
    assert len(reader.fields) == MAX_PARTS


def test_missing_parts_are_validation_errors(client: TestClient, headers: dict[str, str],
                                             sub: tuple[str, str, str]) -> None:
    ctype = {"Content-Type": f"multipart/form-data; boundary={B}"}
    no_file = client.post(path(sub, "forms"), content=f"--{B}--\r\n".encode(), headers={**headers, **ctype})
    assert [e["field"] for e in envelope(no_file, 400, "validation_error")["validationErrors"]] == ["file"]
    no_name = client.post(path(sub, "forms"), content=multipart(("file", None, "application/pdf", PDF)),
                          headers={**headers, **ctype})
    assert "filename" in envelope(no_name, 400, "validation_error")["validationErrors"][0]["message"]
    bare = client.post(path(sub, "fundings"), content=multipart(("amount", None, None, b"1")),
                       headers={**headers, **ctype})
    errors = envelope(bare, 400, "validation_error")["validationErrors"]
    assert [(e["field"], e["code"]) for e in errors] == [("file", "required"), ("currency", "required"),
                                                         ("wireReference", "required")]


@pytest.mark.parametrize(("fields", "expected"), [
    ({"amount": "50,000.00"}, [("amount", "pattern")]),
    ({"amount": "1.234"}, [("amount", "pattern")]),
    ({"amount": "-5"}, [("amount", "pattern")]),
    ({"currency": "usd"}, [("currency", "format")]),
    ({"currency": "USDT"}, [("currency", "format")]),
    ({"wireReference": ""}, [("wireReference", "required")]),
    ({"wireReference": "x" * 201}, [("wireReference", "max_length")]),
    ({"amount": "", "currency": "", "wireReference": "y" * 200},
     [("amount", "pattern"), ("currency", "format")]),
])
def test_funding_metadata_validation(app: Starlette, client: TestClient, headers: dict[str, str],
                                     sub: tuple[str, str, str], fields: dict[str, str],
                                     expected: list[tuple[str, str]]) -> None:
    form(client, headers, sub)
    body = envelope(funding(client, headers, sub, **fields), 400, "validation_error")
    assert [(e["field"], e["code"]) for e in body["validationErrors"]] == expected
    assert events(app, "funding_receipt.uploaded") == []


# --- who and what -------------------------------------------------------------------------------------------------

def test_unknown_spv_person_or_no_subscription_is_404(client: TestClient, headers: dict[str, str],
                                                      sub: tuple[str, str, str]) -> None:
    for target in ((sub[0], "psn_nobody", ""), ("veh_nothing", sub[1], "")):
        envelope(form(client, headers, target), 404, "not_found")
        envelope(funding(client, headers, target), 404, "not_found")
    other = client.post("/v1/investors", headers=headers, json={"investors": [{
        "partnerInvestorId": "acme-inv-2", "email": "bob@example.com", "firstName": "Bob", "lastName": "B",
        "dateOfBirth": "1980-01-01"}]}).json()["results"][0]["zestPersonId"]
    envelope(form(client, headers, (sub[0], other, "")), 404, "not_found")


def test_request_is_judged_before_the_subscription(client: TestClient, headers: dict[str, str],
                                                   sub: tuple[str, str, str]) -> None:
    envelope(form(client, headers, (sub[0], "psn_nobody", ""), PDF, "text/plain"), 415, "unsupported_media_type")
    envelope(funding(client, headers, sub, amount="x"), 400, "validation_error")  # before the 409 on order


def test_auth_and_provisioning_come_first(app: Starlette, client: TestClient, sub: tuple[str, str, str]) -> None:
    envelope(client.post(path(sub, "forms"), files={"file": ("f.pdf", PDF, "application/pdf")}), 401,
             "invalid_token")
    token = bearer(app)
    runtime(app).store.run("UPDATE partners SET provisioned = 0")
    call = Asgi(app, endless_upload()).post(path(sub, "forms"), {**token, "content-type": "text/plain"})
    assert call.status == 403 and b'"forbidden"' in call.body and call.receive_calls == 0


def test_published_shapes(app: Starlette) -> None:
    document = app.state.openapi["partner"]
    schemas = document["components"]["schemas"]
    assert schemas["Body_uploadSubscriptionForm"]["required"] == ["file"]
    assert schemas["Body_uploadSubscriptionForm"]["properties"]["file"] == {
        "type": "string", "format": "binary", "title": "File",
        "description": schemas["Body_uploadSubscriptionForm"]["properties"]["file"]["description"]}
    assert sorted(schemas["Body_uploadFundingReceipt"]["required"]) == ["amount", "currency", "file", "wireReference"]
    for suffix, op_id in (("forms", "uploadSubscriptionForm"), ("fundings", "uploadFundingReceipt")):
        op = document["paths"][f"/v1/spvs/{{spv_slug}}/subscription/{{person_id}}/{suffix}"]["post"]
        assert op["operationId"] == op_id
        assert sorted(op["responses"]) == ["201", "400", "401", "403", "404", "409", "413", "415"]
        content = op["requestBody"]["content"]["multipart/form-data"]
        assert content["encoding"]["file"]["contentType"] == "application/pdf, image/jpeg, image/png, image/webp"
    assert not any("/_mock/files" in p for p in document["paths"])
