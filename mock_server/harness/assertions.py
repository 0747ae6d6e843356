"""Minting JWT-bearer assertions and exchanging them for access tokens, the way the docs tell partners to."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"  # RFC 7523, as a partner sends it (not the server's copy)


def mint_assertion(
    client_id: str, private_key_pem: str, audience: str, *, now: float | None = None, lifetime: int = 60,
    issuer: str = "https://partner.example.com",
) -> str:
    """An EdDSA-signed assertion: iss, sub == client_id, aud, iat, exp = iat + 60 s."""
    issued = int(time.time() if now is None else now)
    claims = {"iss": issuer, "sub": client_id, "client_id": client_id, "aud": audience, "iat": issued,
              "exp": issued + lifetime, "jti": str(uuid.uuid4())}
    return jwt.encode(claims, private_key_pem, algorithm="EdDSA")


def exchange_assertion(client: httpx.Client, assertion: str) -> httpx.Response:
    return client.post("/v1/oauth2/tokens", data={"grant_type": GRANT_TYPE, "assertion": assertion})


def fetch_token(base_url: str, client_id: str, private_key_pem: str, audience: str, *, now: float | None = None) -> str:
    """An access token from a running mock (or Zest environment); raises ``httpx.HTTPStatusError`` on refusal."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        response = exchange_assertion(client, mint_assertion(client_id, private_key_pem, audience, now=now))
        response.raise_for_status()
        return str(response.json()["accessToken"])
