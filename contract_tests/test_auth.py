"""Token exchange and bearer checks: every assertion rule, against the simulated clock."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from starlette.applications import Starlette
from starlette.testclient import TestClient
from support import DEV, bearer, now, runtime

from mock_server.dev_partner import dev_partner_private_key
from mock_server.domain import partners
from mock_server.domain.auth import GRANT_TYPE
from mock_server.harness.assertions import mint_assertion

AUD = "http://localhost:8080"


def exchange(client: TestClient, assertion: str, grant_type: str = GRANT_TYPE) -> Any:
    return client.post("/v1/oauth2/tokens", data={"grant_type": grant_type, "assertion": assertion})


def claims(app: Starlette, **overrides: Any) -> dict[str, Any]:
    t = int(now(app).timestamp())
    base = {"iss": "https://partner.example.com", "sub": DEV, "client_id": DEV, "aud": AUD, "iat": t, "exp": t + 60}
    return {k: v for k, v in {**base, **overrides}.items() if v is not None}


def signed(payload: dict[str, Any], key: str | None = None) -> str:
    return jwt.encode(payload, key or dev_partner_private_key(), algorithm="EdDSA")


def test_exchange_issues_a_one_hour_bearer_token(app: Starlette, client: TestClient) -> None:
    response = exchange(client, mint_assertion(DEV, dev_partner_private_key(), AUD, now=now(app).timestamp()))
    assert response.status_code == 201
    body = response.json()
    assert body["tokenType"] == "Bearer" and body["expiresIn"] == 3600 and body["refreshToken"]
    info = client.get("/v1/oauth2/info", headers={"Authorization": f"Bearer {body['accessToken']}"})
    assert info.status_code == 200
    assert info.json() == {"clientType": "service", "clientId": DEV, "metadata": {"tenantSlug": "acme"}}


def _hs256_with_public_key(app: Starlette) -> str:
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(claims(app)).encode()).rstrip(b"=")
    return f"{header.decode()}.{body.decode()}.c2lnbmF0dXJl"


def _alg_none(app: Starlette) -> str:
    return jwt.encode(claims(app), None, algorithm="none")


def _other_key() -> str:
    return Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


BAD_ASSERTIONS = {
    "alg none": _alg_none,
    "HS256 with the public key": _hs256_with_public_key,
    "wrong key": lambda app: signed(claims(app), _other_key()),
    "expired": lambda app: signed(claims(app, iat=int(now(app).timestamp()) - 120,
                                         exp=int(now(app).timestamp()) - 60)),
    "iat in the future": lambda app: signed(claims(app, iat=int(now(app).timestamp()) + 60,
                                                  exp=int(now(app).timestamp()) + 120)),
    "wrong aud": lambda app: signed(claims(app, aud="https://api.zestequity.com")),
    "sub differs from client_id": lambda app: signed(claims(app, sub="someone-else")),
    "no client_id": lambda app: signed(claims(app, client_id=None)),
    "unknown client": lambda app: signed(claims(app, sub="ghost", client_id="ghost")),
    "lifetime over 300 s": lambda app: signed(claims(app, exp=int(now(app).timestamp()) + 600)),
    "not a JWT": lambda app: "not-a-jwt",
    "oversized": lambda app: "a" * 9000,
}


@pytest.mark.parametrize("case", sorted(BAD_ASSERTIONS))
def test_bad_assertions_are_invalid_token(app: Starlette, client: TestClient, case: str) -> None:
    response = exchange(client, BAD_ASSERTIONS[case](app))
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["code"] == "invalid_token" and body["detail"] and body["errorId"]


def test_leeway_of_five_seconds_on_the_simulated_clock(app: Starlette, client: TestClient) -> None:
    t = int(now(app).timestamp())
    assert exchange(client, signed(claims(app, iat=t + 5, exp=t + 60))).status_code == 201
    assert exchange(client, signed(claims(app, iat=t - 60, exp=t - 5))).status_code == 201
    assert exchange(client, signed(claims(app, iat=t - 60, exp=t - 6))).status_code == 401


@pytest.mark.parametrize("form", [{"assertion": "x"}, {"grant_type": "client_credentials", "assertion": "x"},
                                  {"grant_type": GRANT_TYPE}])
def test_bad_grant_is_invalid_request(client: TestClient, form: dict[str, str]) -> None:
    response = client.post("/v1/oauth2/tokens", data=form)
    assert response.status_code == 400 and response.json()["code"] == "invalid_request"


def test_token_endpoint_wants_a_form(client: TestClient) -> None:
    response = client.post("/v1/oauth2/tokens", json={"grant_type": GRANT_TYPE, "assertion": "x"})
    assert response.status_code == 400 and response.json()["code"] == "invalid_request"


@pytest.mark.parametrize("value", [None, "", "Bearer", "Basic abc", "Bearer not-a-token", "Bearer " + "a" * 9000])
def test_bad_bearer_is_401(client: TestClient, value: str | None) -> None:
    response = client.get("/v1/spv-requests", headers={} if value is None else {"Authorization": value})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_access_token_expires_after_an_hour_of_simulated_time(app: Starlette, client: TestClient) -> None:
    headers = bearer(app)
    rt = runtime(app)
    from datetime import timedelta

    rt.clock.set_to(rt.clock.now() + timedelta(seconds=3599))
    assert client.get("/v1/oauth2/info", headers=headers).status_code == 200
    rt.clock.set_to(rt.clock.now() + timedelta(seconds=1))
    expired = client.get("/v1/oauth2/info", headers=headers)
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]


def test_unprovisioned_partner_is_403_on_writes(app: Starlette, client: TestClient) -> None:
    rt = runtime(app)
    partners.register(rt.store, rt.clock, rt.ids, client_id="late-co", tenant_slug="late", provisioned=False)
    headers = bearer(app, "late-co")
    assert client.get("/v1/spv-requests", headers=headers).status_code == 200
    response = client.post("/v1/investors", json={"investors": []}, headers=headers)
    assert response.status_code == 403 and response.json()["code"] == "forbidden"


def test_assertions_fit_either_the_simulated_or_the_wall_clock(app: Starlette, client: TestClient) -> None:
    rt = runtime(app)
    from datetime import timedelta

    rt.clock.set_to(rt.clock.now() + timedelta(days=30))  # a test advanced the mock's clock by a month
    sim, wall = int(now(app).timestamp()), int(rt.clock.wall_time())
    assert exchange(client, signed(claims(app, iat=sim, exp=sim + 60))).status_code == 201  # shares the mock's clock
    assert exchange(client, signed(claims(app, iat=wall, exp=wall + 60))).status_code == 201  # signs with its own
    stale = exchange(client, signed(claims(app, iat=wall - 400_000, exp=wall - 399_950)))
    assert stale.status_code == 401 and "both simulated and wall time" in stale.json()["detail"]
