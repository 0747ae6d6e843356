"""Routes of the Authentication tag: the JWT-bearer token exchange and token introspection."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from starlette.responses import Response

from mock_server.domain import auth
from mock_server.http.bodies import json_response, read_form
from mock_server.http.common import errors
from mock_server.http.operations import Answer, Body, Call, Operation
from mock_server.models import InfoResponse, TokenResponse, dump


class Body_exchangeJwtAssertion(BaseModel):  # open: other form fields are ignored, as OAuth servers do
    grant_type: Literal["urn:ietf:params:oauth:grant-type:jwt-bearer"]  # anything else: 400 invalid_request
    assertion: str = Field(min_length=1, description="The EdDSA-signed JWT assertion (RFC 7523)")


async def exchange(call: Call) -> Response:
    form = await read_form(call.request, 16 * 1024)
    rt = call.rt
    audiences = auth.accepted_audiences(rt.settings, str(call.request.base_url))
    grant = auth.exchange(rt.store, rt.clock, rt.settings, form.get("grant_type"), form.get("assertion"), audiences)
    call.request.scope.setdefault("state", {})["client_id"] = grant.client_id
    body = TokenResponse(accessToken=grant.access_token, expiresIn=grant.expires_in, refreshToken=grant.refresh_token)
    return json_response(dump(body), 201)


async def info(call: Call) -> Response:
    partner = call.partner
    body = InfoResponse(clientType="service", clientId=partner.client_id, metadata={"tenantSlug": partner.tenant_slug})
    return json_response(dump(body))


OPERATIONS = [
    Operation(
        "POST", "/v1/oauth2/tokens", "exchangeJwtAssertion", "Authentication",
        "Exchange a JWT assertion for an access token", exchange,
        {201: Answer("Access token issued", TokenResponse), **errors(400, 401)},
        body=Body("application/x-www-form-urlencoded", Body_exchangeJwtAssertion),
        description="RFC 7523 JWT-bearer grant: an EdDSA-signed assertion with aud, sub == client_id, iat, exp.",
    ),
    Operation(
        "GET", "/v1/oauth2/info", "getOauth2Info", "Authentication", "Inspect the current access token", info,
        {200: Answer("The token's client", InfoResponse), **errors(401)}, secured=True,
    ),
]
