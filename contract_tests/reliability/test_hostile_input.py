"""Hostile input: every malformed, forged or oversized request gets a clear 4xx envelope, the mock keeps serving
the next request correctly, and memory stays bounded.

- Schemathesis in negative mode (fuzzing phase only, so every case breaks the schema) at a higher example count
  than the contract run, bounded by that count (never by wall time), reusing ``schemathesis.toml`` and the media
  types, seeding, config and narrowed checks of ``mock_server/harness/st_support.py`` that ``test_schemathesis.py``
  uses;
  afterwards the journal holds no 5xx and the mock still creates resources.
- JWT attacks that ``test_auth.py`` does not already cover, on the assertion (a real HS256 key-confusion
  signature, ``alg`` spelled ``None``, embedded or remote keys, a stripped or spliced signature, a signed token
  over the size cap, a form body over its cap, non-finite times) and on bearer tokens (forged, from another
  instance, an assertion in place of an access token, a payload edited under a kept signature).
- Multipart that ``test_uploads.py`` does not already cover: 1,000 parts, huge part headers, the file part under
  another name.
- JSON bodies: 50 MB streamed to a JSON and to an upload endpoint (413 after the cap, with the peak of traced
  allocations stated), the worst 1 MiB fan-out, nesting at the interpreter's recursion limit, lone surrogates,
  huge integers, NaN, and query integers in non-ASCII digits.

The mock gets the last five of those, and non-finite JWT times, wrong (a 5xx, an envelope that is not JSON, or
an assertion that never expires): bugs in modules this suite does not own, so their tests are
``xfail(strict=True)`` with a reason naming the file and function.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import hmac
import json
import sys
import tomllib
import tracemalloc
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)
from schemathesis import Case
from starlette.applications import Starlette
from starlette.testclient import TestClient
from support import DEV, PDF, bearer, create_spv_request, now, settings, subscription

from mock_server.app import create_app
from mock_server.dev_partner import dev_partner_private_key
from mock_server.domain.auth import GRANT_TYPE
from mock_server.harness.st_support import (
    narrowed_checks,
    operation_id,
    prepare_case,
    project_config,
    register_media_types,
    seed_mock,
)

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


def still_serving(client: TestClient, headers: dict[str, str]) -> None:
    """The mock answers the next ordinary requests correctly."""
    assert client.get("/v1/oauth2/info", headers=headers).json()["clientId"] == DEV
    assert create_spv_request(client, headers).status_code == 201


def envelope(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["detail"] and body["errorId"]
    return body


# --- schemathesis, negative mode ----------------------------------------------------------------------------------

NEGATIVE_EXAMPLES = 200  # per operation; the contract run uses 50 in all modes
FUZZ_APP = create_app(settings())
FUZZ_HEADERS = bearer(FUZZ_APP)
register_media_types()  # real PDF/JPEG/PNG/WEBP bytes for the upload parts, as in the contract run


def _negative_config() -> schemathesis.Config:
    """``schemathesis.toml`` with the fuzzing phase only, in negative mode, pointed at seeded resources (so a case
    whose only broken part is, say, a header reaches the code behind the lookup)."""
    data = tomllib.loads((ROOT / "schemathesis.toml").read_text())
    data["generation"] = {**data.get("generation", {}), "mode": "negative", "max-examples": NEGATIVE_EXAMPLES}
    data["phases"] = {"examples": {"enabled": False}, "coverage": {"enabled": False}, "fuzzing": {"enabled": True}}
    dictionaries = seed_mock(TestClient(FUZZ_APP), FUZZ_HEADERS)  # no lifespan needed: synchronous store work
    return project_config(data, token=FUZZ_HEADERS["Authorization"].removeprefix("Bearer "),
                          dictionaries=dictionaries, base_dir=str(ROOT))


negative_schema = schemathesis.openapi.from_asgi("/openapi.json", FUZZ_APP, config=_negative_config())
NARROWED = narrowed_checks(FUZZ_APP.state.openapi["partner"], judge_positive=False)


@negative_schema.parametrize()
def test_negative_mode(case: Case) -> None:
    prepare_case(case)  # a valid Idempotency-Key of its own, so the broken part is what gets judged
    excluded, additional = NARROWED.get(operation_id(case), ([], []))
    case.call_and_validate(excluded_checks=excluded, additional_checks=additional)


def test_after_the_negative_run_the_mock_is_whole() -> None:
    rt = FUZZ_APP.state.rt
    row = rt.store.one("SELECT COUNT(*) AS n, SUM(status >= 500) AS errors FROM journal")
    assert row is not None and not row["errors"], row
    # No `with`: schemathesis holds this app's lifespan open; a second, overlapping one would stop its scheduler.
    still_serving(TestClient(FUZZ_APP, raise_server_exceptions=False), bearer(FUZZ_APP))


# --- JWT attacks on the token exchange and on bearer tokens -------------------------------------------------------

AUD = "http://localhost:8080"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(app: Starlette, **overrides: Any) -> dict[str, Any]:
    t = int(now(app).timestamp())
    return {"iss": "https://partner.example.com", "sub": DEV, "client_id": DEV, "aud": AUD, "iat": t, "exp": t + 60,
            **overrides}


def _attacker() -> tuple[str, dict[str, str]]:
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    return pem, {"kty": "OKP", "crv": "Ed25519", "x": _b64(public)}


def _unsigned(header: dict[str, Any], payload: dict[str, Any] | str, signature: bytes = b"") -> str:
    body = payload if isinstance(payload, str) else json.dumps(payload)
    return f"{_b64(json.dumps(header).encode())}.{_b64(body.encode())}.{_b64(signature)}"


def _hs256(payload: dict[str, Any], secret: bytes) -> str:
    """An HS256 JWT really signed with ``secret`` (PyJWT refuses PEM keys and warns on short ones)."""
    signing = f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{_b64(json.dumps(payload).encode())}"
    return f"{signing}.{_b64(hmac.new(secret, signing.encode(), hashlib.sha256).digest())}"


def _hs256_with_the_public_key(app: Starlette) -> str:
    row = app.state.rt.store.one("SELECT public_key_pem FROM partners WHERE client_id = ?", DEV)
    return _hs256(_claims(app), row["public_key_pem"].encode())


def _embedded_jwk(app: Starlette) -> str:
    pem, jwk = _attacker()
    return jwt.encode(_claims(app), pem, algorithm="EdDSA", headers={"jwk": jwk})


def _remote_key(app: Starlette) -> str:
    pem, _ = _attacker()
    return jwt.encode(_claims(app), pem, algorithm="EdDSA",
                      headers={"jku": "https://attacker.example/jwks.json", "kid": "../../../dev/null"})


def _spliced(app: Starlette) -> str:
    other = jwt.encode(_claims(app, iss="other"), dev_partner_private_key(), algorithm="EdDSA")
    head, payload, _ = jwt.encode(_claims(app), dev_partner_private_key(), algorithm="EdDSA").split(".")
    return f"{head}.{payload}.{other.split('.')[2]}"


ASSERTION_ATTACKS = {
    "HS256 signed with the public key as HMAC secret": _hs256_with_the_public_key,
    "alg None": lambda app: _unsigned({"alg": "None", "typ": "JWT"}, _claims(app)),
    "alg NONE": lambda app: _unsigned({"alg": "NONE"}, _claims(app)),
    "alg nOnE": lambda app: _unsigned({"alg": "nOnE"}, _claims(app)),
    "signature stripped": lambda app: _unsigned({"alg": "EdDSA"}, _claims(app)),
    "signature of another assertion": _spliced,
    "attacker key embedded as jwk": _embedded_jwk,
    "attacker key by jku and a traversing kid": _remote_key,
    "unknown critical header": lambda app: jwt.encode(_claims(app), dev_partner_private_key(), algorithm="EdDSA",
                                                      headers={"crit": ["zest-x"], "zest-x": 1}),
    "signed, well formed and over the size cap": lambda app: jwt.encode(
        _claims(app, pad="x" * 9000), dev_partner_private_key(), algorithm="EdDSA"),
    "payload is an array": lambda app: _unsigned({"alg": "EdDSA"}, "[1, 2]"),
}


def _exchange(client: TestClient, assertion: str) -> Any:
    return client.post("/v1/oauth2/tokens", data={"grant_type": GRANT_TYPE, "assertion": assertion})


def _good_exchange(client: TestClient, app: Starlette) -> None:
    response = _exchange(client, jwt.encode(_claims(app), dev_partner_private_key(), algorithm="EdDSA"))
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("attack", sorted(ASSERTION_ATTACKS))
def test_forged_assertions_are_refused(app: Starlette, client: TestClient, attack: str) -> None:
    envelope(_exchange(client, ASSERTION_ATTACKS[attack](app)), 401, "invalid_token")
    _good_exchange(client, app)


def test_a_form_body_over_its_cap_is_413(app: Starlette, client: TestClient) -> None:
    envelope(client.post("/v1/oauth2/tokens", data={"grant_type": GRANT_TYPE, "assertion": "a" * 20_000}),
             413, "payload_too_large")
    _good_exchange(client, app)


def _signed_raw(payload: str) -> str:
    """An EdDSA JWT over ``payload`` exactly as given (PyJWT would refuse to write NaN)."""
    key = load_pem_private_key(dev_partner_private_key().encode(), None)
    assert isinstance(key, Ed25519PrivateKey)
    signing = f"{_b64(json.dumps({'alg': 'EdDSA', 'typ': 'JWT'}).encode())}.{_b64(payload.encode())}"
    return f"{signing}.{_b64(key.sign(signing.encode()))}"


@pytest.mark.parametrize(("iat", "exp"), [("NaN", "NaN"), ("{t}", "NaN"), ("NaN", "{t60}")])
def test_assertion_times_must_be_finite(app: Starlette, client: TestClient, iat: str, exp: str) -> None:
    t = int(now(app).timestamp())
    times = {"{t}": str(t), "{t60}": str(t + 60)}
    payload = (f'{{"iss":"x","sub":"{DEV}","client_id":"{DEV}","aud":"{AUD}",'
               f'"iat":{times.get(iat, iat)},"exp":{times.get(exp, exp)}}}')
    envelope(_exchange(client, _signed_raw(payload)), 401, "invalid_token")


def _bearer_attacks(app: Starlette) -> dict[str, str]:
    real = bearer(app)["Authorization"].removeprefix("Bearer ")
    head, payload, signature = real.split(".")
    edited = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    stranger = create_app(settings(seed=2))  # another instance: another signing secret
    forged = {"sub": DEV, "client_id": DEV, "iat": int(now(app).timestamp()), "exp": int(now(app).timestamp()) + 60}
    return {
        "alg none": _unsigned({"alg": "none", "typ": "JWT"}, forged),
        "HS256 with a guessed secret": _hs256(forged, b"secret"),
        "HS256 with an empty secret": _hs256(forged, b""),
        "issued by another mock instance": bearer(stranger)["Authorization"].removeprefix("Bearer "),
        "an assertion instead of an access token": jwt.encode(_claims(app), dev_partner_private_key(),
                                                              algorithm="EdDSA"),
        "payload edited under the kept signature": f"{head}.{_b64(json.dumps({**edited, 'exp': 2**40}).encode())}"
                                                   f".{signature}",
        "signature truncated": real[:-4],
    }


def test_forged_bearer_tokens_are_refused(app: Starlette, client: TestClient) -> None:
    for name, token in _bearer_attacks(app).items():
        response = client.get("/v1/spv-requests", headers={"Authorization": f"Bearer {token}"})
        assert response.headers.get("www-authenticate", "").startswith("Bearer"), name
        envelope(response, 401, "invalid_token")
    still_serving(client, bearer(app))


# --- multipart --------------------------------------------------------------------------------------------------

BOUNDARY = "hostileboundary"


def _part(name: str, filename: str | None, ctype: str | None, data: bytes, extra: bytes = b"") -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode() + extra
    return head + (f"Content-Type: {ctype}\r\n" if ctype else "").encode() + b"\r\n" + data + b"\r\n"


END = f"--{BOUNDARY}--\r\n".encode()
FILE = ("file", "form.pdf", "application/pdf", PDF)
FUNDING_FIELDS = [("amount", None, None, b"1.00"), ("currency", None, None, b"USD"),
                  ("wireReference", None, None, b"W")]
MULTIPART_ATTACKS: dict[str, tuple[str, bytes, str]] = {  # name -> (forms|fundings, body, expected detail)
    "1,000 file parts": ("forms", _part(*FILE) * 1000 + END, "appears more than once"),
    "1,000 distinct unknown parts": ("forms", b"".join(_part(f"p{i}", None, None, b"x") for i in range(1000)) + END,
                                     "more than 50 parts"),
    "1,000 nameless parts": ("forms", f"--{BOUNDARY}\r\n\r\nx\r\n".encode() * 1000 + END, "Content-Disposition"),
    "1,000 funding fields": ("fundings", b"".join(_part(*f) for f in FUNDING_FIELDS * 334) + END,
                             "appears more than once"),
    "a 5 MB part header": ("forms", _part(*FILE, b"X-Pad: " + b"a" * 5 * MiB + b"\r\n") + END,
                           "Maximum header size"),
    "100,000 part header lines": ("forms", _part(*FILE, b"".join(b"X-H%d: v\r\n" % i for i in range(100_000))) + END,
                                  "Maximum header count"),
    "a 1 MB filename": ("forms", _part("file", "f" * MiB + ".pdf", "application/pdf", PDF) + END,
                        "Maximum header size"),
    "the receipt sent as the amount part": ("fundings", b"".join(_part(*f) for f in FUNDING_FIELDS[1:])
                                            + _part("amount", "r.pdf", "application/pdf", PDF * 40) + END,
                                            "over 1024 bytes"),
}


@pytest.fixture
def holder(client: TestClient, headers: dict[str, str]) -> tuple[str, str, str]:
    return subscription(client, headers)


@pytest.mark.parametrize("attack", sorted(MULTIPART_ATTACKS))
def test_hostile_multipart_is_400_then_a_normal_upload_works(app: Starlette, client: TestClient,
                                                            headers: dict[str, str], holder: tuple[str, str, str],
                                                            attack: str) -> None:
    kind, body, detail = MULTIPART_ATTACKS[attack]
    target = f"/v1/spvs/{holder[0]}/subscription/{holder[1]}"
    response = client.post(f"{target}/{kind}", content=body,
                           headers={**headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert detail in envelope(response, 400, "invalid_request")["detail"]
    rt = app.state.rt
    assert rt.store.one("SELECT status, form_sha256 FROM subscriptions") == {"status": "pending", "form_sha256": None}
    assert rt.store.one("SELECT COUNT(*) AS n FROM files") == {"n": 0}
    normal = client.post(f"{target}/forms", files={"file": ("form.pdf", PDF, "application/pdf")}, headers=headers)
    assert normal.status_code == 201, normal.text


@pytest.mark.parametrize("name", ["document", "File", "file[]"])
def test_a_misnamed_file_part_is_ignored_and_the_file_missing(app: Starlette, client: TestClient,
                                                               headers: dict[str, str], holder: tuple[str, str, str],
                                                               name: str) -> None:
    response = client.post(f"/v1/spvs/{holder[0]}/subscription/{holder[1]}/forms",
                           content=_part(name, "form.pdf", "application/pdf", PDF) + END,
                           headers={**headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert [e["field"] for e in envelope(response, 400, "validation_error")["validationErrors"]] == ["file"]
    assert f'"{name}"' in response.headers["Zest-Mock-Warning"]
    assert app.state.rt.store.one("SELECT COUNT(*) AS n FROM files") == {"n": 0}


# --- JSON bodies and memory -------------------------------------------------------------------------------------

class Asgi:
    """One POST straight into the ASGI app with a lazily produced body, so memory can be traced without a client."""

    def __init__(self, app: Starlette, target: str, headers: dict[str, str], chunks: Iterable[bytes]) -> None:
        self.app, self.target, self.headers, self.chunks = app, target, headers, iter(chunks)
        self.status, self.received, self.body = 0, 0, bytearray()

    def run(self) -> Asgi:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": self.target, "raw_path": self.target.encode(), "query_string": b"",
                 "root_path": "", "client": ("127.0.0.1", 1), "server": ("testserver", 80),
                 "headers": [(k.lower().encode(), v.encode()) for k, v in self.headers.items()]}
        asyncio.run(self.app(scope, self._receive, self._send))
        return self

    async def _receive(self) -> dict[str, Any]:
        chunk = next(self.chunks, None)
        self.received += len(chunk or b"")
        return {"type": "http.request", "body": chunk or b"", "more_body": chunk is not None}

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")


def traced_peak(call: Asgi) -> tuple[Asgi, int]:
    gc.collect()
    tracemalloc.start()
    try:
        call.run()
        return call, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def stream(head: bytes, total: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    yield head
    for _ in range(total // chunk):
        yield b"x" * chunk


def test_50_mb_streamed_to_json_and_upload_endpoints_stays_under_4_mib(
        app: Starlette, client: TestClient, headers: dict[str, str], holder: tuple[str, str, str]) -> None:
    json_call, json_peak = traced_peak(Asgi(app, "/v1/investors", {**headers, "Content-Type": "application/json"},
                                            stream(b'{"investors": ["', 50 * MiB)))
    upload_head = _part("file", "big.pdf", "application/pdf", b"%PDF-")[:-2]
    upload_call, upload_peak = traced_peak(Asgi(
        app, f"/v1/spvs/{holder[0]}/subscription/{holder[1]}/forms",
        {**headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}, stream(upload_head, 50 * MiB)))
    for call, cap in ((json_call, MiB), (upload_call, 10 * MiB)):
        assert call.status == 413 and json.loads(call.body)["code"] == "payload_too_large"
        assert cap < call.received <= cap + 128 * 1024  # it stopped reading right after the cap, not at 50 MB
    assert json_peak < 4 * MiB and upload_peak < 4 * MiB, (json_peak, upload_peak)
    still_serving(client, headers)


def test_worst_1_mib_json_fan_out_is_a_400_in_bounded_memory(app: Starlette, client: TestClient,
                                                             headers: dict[str, str]) -> None:
    keys = ",".join(f'"k{i}":1' for i in range(90_000))  # ~1 MiB of unknown attributes: one error entry each
    body = f'{{"templateId":"syndicate_secondary","templateVersion":"1.0.0","attributes":{{{keys}}}}}'.encode()
    assert len(body) < MiB
    call, peak = traced_peak(Asgi(app, "/v1/spv-requests", {**headers, "Content-Type": "application/json",
                                                            "Idempotency-Key": "fan-out"}, [body]))
    answer = json.loads(call.body)
    assert call.status == 400 and answer["code"] == "validation_error" and len(answer["validationErrors"]) == 100
    assert "(the first 100 of 9000" in answer["detail"]
    # Stated bound: 128 MiB of traced allocations for the worst body the 1 MiB cap lets in (the envelope itself
    # lists at most 100 entries).
    assert peak < 128 * MiB, peak
    still_serving(client, headers)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_nesting_at_the_recursion_limit_is_a_4xx(client: TestClient, headers: dict[str, str]) -> None:
    limit = sys.getrecursionlimit()
    json_headers = {**headers, "Content-Type": "application/json"}
    for depth in range(limit - 100, limit + 10):
        for path, body in (("/v1/investors", f'{{"investors":[{_nested(depth)}]}}'),
                           ("/v1/spv-requests", f'{{"templateId":"syndicate_secondary","templateVersion":"1.0.0",'
                                                f'"attributes":{{"x":{_nested(depth)}}}}}')):
            response = client.post(path, content=body, headers={**json_headers, "Idempotency-Key": f"d{depth}"})
            assert response.status_code < 500, (depth, path, response.text)
    still_serving(client, headers)


BAD_JSON = {
    "lone surrogate in a value": '{"investors":[{"partnerInvestorId":"\\ud800","email":"a@example.com",'
                                 '"firstName":"A","lastName":"B","dateOfBirth":"1990-01-01"}]}',
    "lone surrogate in a key": '{"investors":[],"\\udfff":1}',
    "a 5,000-digit integer": '{"investors":[{"partnerInvestorId":' + "9" * 5000 + "}]}",
    "NaN": '{"investors":[],"templateId":NaN}',
}


@pytest.mark.parametrize("case", sorted(BAD_JSON))
def test_non_standard_json_is_a_strict_400(client: TestClient, headers: dict[str, str], case: str) -> None:
    response = client.post("/v1/investors", content=BAD_JSON[case].encode("utf-8", "surrogatepass"),
                           headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    json.loads(response.content, parse_constant=lambda name: pytest.fail(f"{name} in the answer"))


@pytest.mark.parametrize("query", ["perPage=%C2%B2", "page=%C2%B9"])
def test_non_ascii_digits_in_query_integers_are_400(client: TestClient, headers: dict[str, str], query: str) -> None:
    envelope(client.get(f"/v1/spv-requests?{query}", headers=headers), 400, "invalid_request")

