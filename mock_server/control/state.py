"""Control routes over the whole state: reset, seed, the state summary, partner registration and direct tokens."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.responses import Response

from mock_server.domain import auth, partners
from mock_server.domain import state as domain_state
from mock_server.domain.partners import DEV_CLIENT_ID
from mock_server.http.bodies import json_response, read_json
from mock_server.http.common import errors
from mock_server.http.operations import Answer, Body, Call, Operation
from mock_server.http.writes import Effect
from mock_server.validation import parse_model

M = TypeVar("M", bound=BaseModel)
_IDENT = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ResetBody(_Closed):
    keepPartners: bool = Field(default=False, description="Keep registered partners (keys, webhook endpoints)")


class ResetResult(BaseModel):
    keptPartners: bool
    partners: list[str]


class SeedBody(_Closed):
    seed: int = Field(ge=0, le=2**63 - 1)


class SeedResult(BaseModel):
    seed: int


class PartnerBody(_Closed):
    clientId: str = Field(pattern=_IDENT)
    tenantSlug: str = Field(pattern=_IDENT)
    publicKeyPem: str | None = Field(default=None, max_length=4096,
                                     description="Ed25519 public key (PEM); a keypair is generated when absent")
    provisioned: bool = True
    webhookUrl: str | None = Field(default=None, pattern=r"^https?://\S+$", max_length=2000)
    webhookSecret: str | None = Field(default=None, pattern=r"^whsec_[A-Za-z0-9]{8,128}$")
    issuer: str | None = Field(default=None, min_length=1, max_length=2000,
                               description="When set, assertions must carry exactly this iss")

    @field_validator("publicKeyPem")
    @classmethod
    def _ed25519(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey  # first use: not at start-up
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        try:
            key = load_pem_public_key(value.encode())
        except ValueError as exc:
            raise ValueError("publicKeyPem is not a PEM-encoded public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("publicKeyPem must be an Ed25519 public key")
        return value


class PartnerOut(BaseModel):
    clientId: str
    tenantSlug: str
    provisioned: bool
    publicKeyPem: str
    webhookUrl: str | None
    webhookSecret: str
    issuer: str | None


class RegisteredPartner(PartnerOut):
    privateKeyPem: str | None = Field(description="The generated private key; null when a public key was given")


class PartnerList(BaseModel):
    items: list[PartnerOut]


class TokenBody(_Closed):
    clientId: str = DEV_CLIENT_ID


class MockToken(BaseModel):
    accessToken: str
    tokenType: str = "Bearer"
    expiresIn: int
    refreshToken: str
    clientId: str


async def reset(call: Call) -> Response:
    body = await _optional_body(call, ResetBody)
    kept = await domain_state.reset(call.rt, keep_partners=body.keepPartners)
    return json_response({"keptPartners": body.keepPartners, "partners": kept})


async def seed(call: Call) -> Response:
    body = parse_model(SeedBody, await read_json(call.request, 1024))
    return json_response({"seed": domain_state.reseed(call.rt, body.seed)})


async def show_state(call: Call) -> Response:
    return json_response(domain_state.snapshot(call.rt).model_dump(exclude_none=True))


async def register_partner(call: Call) -> Effect:
    body = parse_model(PartnerBody, await read_json(call.request, 16 * 1024))
    rt = call.rt

    def run() -> tuple[int, object]:
        created = partners.register(
            rt.store, rt.clock, rt.ids, client_id=body.clientId, tenant_slug=body.tenantSlug,
            public_key_pem=body.publicKeyPem, provisioned=body.provisioned, webhook_url=body.webhookUrl,
            webhook_secret=body.webhookSecret, issuer=body.issuer,
        )
        return 201, {**created.partner.public(), "privateKeyPem": created.private_key_pem}

    return Effect(run)


async def list_partners(call: Call) -> Response:
    return json_response({"items": [p.public() for p in partners.all_partners(call.rt.store)]})


async def issue_token(call: Call) -> Response:
    body = await _optional_body(call, TokenBody)
    rt = call.rt
    partner = partners.get(rt.store, body.clientId)
    grant = auth.issue_token(rt.store, rt.clock, rt.settings, partner.client_id)
    return json_response({"accessToken": grant.access_token, "tokenType": "Bearer", "expiresIn": grant.expires_in,
                          "refreshToken": grant.refresh_token, "clientId": grant.client_id}, 201)


async def _optional_body(call: Call, model: type[M]) -> M:
    """An optional JSON body: absent means every default."""
    if not await call.request.body():
        return model()
    return parse_model(model, await read_json(call.request, 4096))


def _op(method: str, path: str, operation_id: str, summary: str, handler: Any, answers: dict[int, Answer],
        body: type[BaseModel] | None = None, description: str = "", transaction: bool = False) -> Operation:
    return Operation(method, path, operation_id, "Mock state", summary, handler, answers,
                     body=Body("application/json", body) if body else None, description=description, plane="control",
                     transaction=transaction)


OPERATIONS = [
    _op("POST", "/_mock/reset", "resetState", "Wipe every resource, event, delivery, job and journal entry",
        reset, {200: Answer("Reset done", ResetResult), **errors(400)}, ResetBody,
        "The dev partner always exists afterwards and the admin policy is the configured one. The body is "
        "optional; `{\"keepPartners\": true}` keeps registered partners and keeps their tokens valid."),
    _op("POST", "/_mock/seed", "seedIds", "Reseed the id generator", seed,
        {200: Answer("The new seed", SeedResult), **errors(400)}, SeedBody,
        "The same seed then gives the same ids for the same sequence of calls."),
    _op("GET", "/_mock/state", "getState", "Counts and resources per partner, the clock and the seed", show_state,
        {200: Answer("The state", domain_state.MockState)}),
    _op("POST", "/_mock/partners", "registerPartner", "Register a partner application", register_partner,
        {201: Answer("Registered", RegisteredPartner), **errors(400, 409)}, PartnerBody,
        "Without `publicKeyPem` a seeded Ed25519 keypair is generated and its private key returned once.",
        transaction=True),
    _op("GET", "/_mock/partners", "listPartners", "Registered partners", list_partners,
        {200: Answer("Partners", PartnerList)}),
    _op("POST", "/_mock/tokens", "issueMockToken", "A bearer token for a partner, without the JWT exchange",
        issue_token, {201: Answer("Token issued", MockToken), **errors(400, 404)}, TokenBody,
        "The body is optional and defaults to the dev partner."),
]
