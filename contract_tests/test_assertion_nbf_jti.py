"""RFC 7523 rules on assertions beyond iat/exp: ``nbf`` within the leeway, and (behind a flag) no ``jti`` twice."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import jwt
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from support import DEV, now, runtime, settings

from mock_server.app import create_app
from mock_server.dev_partner import dev_partner_private_key
from mock_server.domain.auth import GRANT_TYPE

AUD = "http://localhost:8080"
# Years before any wall clock running this suite: an assertion judged here can only fit the simulated clock.
PAST = "2020-01-01T00:00:00.000Z"


@pytest.fixture
def app() -> Starlette:
    return create_app(settings(clock_start=PAST))


@pytest.fixture
def strict() -> Starlette:
    return create_app(settings(clock_start=PAST, reject_replayed_assertions=True))


def assertion(app: Starlette, **overrides: Any) -> str:
    t = int(now(app).timestamp())
    claims = {"iss": "https://partner.example.com", "sub": DEV, "client_id": DEV, "aud": AUD, "iat": t,
              "exp": t + 60, **overrides}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, dev_partner_private_key(),
                      algorithm="EdDSA")


def exchange(client: TestClient, token: str) -> Any:
    return client.post("/v1/oauth2/tokens", data={"grant_type": GRANT_TYPE, "assertion": token})


def refused(response: Any, detail: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "invalid_token" and detail in response.json()["detail"]


@pytest.mark.parametrize("ahead", [6, 3600, 365 * 86400])
def test_an_assertion_not_yet_valid_is_refused(app: Starlette, client: TestClient, ahead: int) -> None:
    t = int(now(app).timestamp())
    refused(exchange(client, assertion(app, nbf=t + ahead)), "nbf is in the future")


@pytest.mark.parametrize("offset", [-30, 0, 5])
def test_nbf_within_the_leeway_or_past_is_accepted(app: Starlette, client: TestClient, offset: int) -> None:
    t = int(now(app).timestamp())
    assert exchange(client, assertion(app, nbf=t + offset)).status_code == 201


@pytest.mark.parametrize("nbf", ["soon", True, None])
def test_nbf_must_be_unix_seconds(app: Starlette, client: TestClient, nbf: Any) -> None:
    token = assertion(app, nbf=nbf)
    if nbf is None:
        assert exchange(client, token).status_code == 201  # absent is fine
    else:
        refused(exchange(client, token), "must be Unix seconds")


def test_replays_are_accepted_by_default(app: Starlette, client: TestClient) -> None:
    token = assertion(app, jti="same")
    assert [exchange(client, token).status_code for _ in range(3)] == [201, 201, 201]


def test_with_the_flag_a_jti_is_exchanged_once(strict: Starlette) -> None:
    with TestClient(strict) as client:
        token = assertion(strict, jti=str(uuid.uuid4()))
        assert exchange(client, token).status_code == 201
        refused(exchange(client, token), "jti was already exchanged")
        assert exchange(client, assertion(strict, jti=str(uuid.uuid4()))).status_code == 201


def test_with_the_flag_a_jti_is_required(strict: Starlette) -> None:
    with TestClient(strict) as client:
        refused(exchange(client, assertion(strict)), "must carry a jti")
        refused(exchange(client, assertion(strict, jti="j" * 257)), "must carry a jti")


def test_a_refused_assertion_does_not_use_up_its_jti(strict: Starlette) -> None:
    with TestClient(strict) as client:
        t = int(now(strict).timestamp())
        refused(exchange(client, assertion(strict, jti="once", nbf=t + 3600)), "nbf")
        assert exchange(client, assertion(strict, jti="once")).status_code == 201


def test_seen_jtis_are_forgotten_once_their_assertions_expired(strict: Starlette) -> None:
    rt = runtime(strict)
    with TestClient(strict) as client:
        assert exchange(client, assertion(strict, jti="first")).status_code == 201
        rt.clock.set_to(rt.clock.now() + timedelta(hours=1))  # and wall time is years later: expired on both
        assert exchange(client, assertion(strict, jti="second")).status_code == 201
    rows = rt.store.all("SELECT jti FROM used_assertions ORDER BY jti")
    assert rows == [{"jti": "second"}]
