"""Schemathesis against the mock's own ``/openapi.json``, in process: no 5xx, no answer outside the schema.

Every partner operation runs the examples, coverage and fuzzing phases (seeded, see ``schemathesis.toml``) with
the default checks. Auth is a real dev-partner bearer token given through ``[auth.openapi.HTTPBearer]`` rather
than a blanket header, so ``ignored_auth`` can still send its requests without and with bad credentials.

Before the schema is loaded, the mock gets an approved SPV, investors, open subscriptions and pending SPV
requests; schemathesis dictionaries feed their slugs to the fuzzer part of the time, so uploads, subscriptions,
get and cancel reach their 2xx answers too instead of only 404.

Two checks are narrowed (not dropped) where the published contract is wider than a schema can say, or where
schemathesis labels a request negative that is not negative on the wire:

- ``positive_data_acceptance`` lets through a ``400 validation_error`` whose every entry is a rule on stored
  data (the template named in the body, the SPV's share classes and currency);
- ``negative_data_rejection`` on ``bulkCreateInvestors`` lets through a ``200`` whose request is well formed
  except inside rows, because a bad row fails alone; the check then asserts that every row the schema refuses
  came back ``failed``, and every row it accepts did not fail validation;
- ``negative_data_rejection`` on the form-encoded operations (token exchange, uploads) judges the fields as they
  were sent: a form field is text, so a "number instead of string" mutation that arrives as the string ``0.0``
  is a valid request, not a negative one.
"""

from __future__ import annotations

import email
import email.policy
import itertools
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jsonschema_rs
import schemathesis
import st_hooks  # registers PDF/JPEG/PNG/WEBP bytes for the upload parts
from schemathesis import Case, CheckContext, Response
from schemathesis.checks import negative_data_rejection, positive_data_acceptance
from starlette.applications import Starlette
from starlette.testclient import TestClient
from support import DEV, bearer, create_spv_request, investor, settings

from mock_server.app import create_app
from mock_server.domain.partners import dev_partner_private_key
from mock_server.harness.assertions import mint_assertion

ROOT = Path(__file__).resolve().parent.parent
APP = create_app(settings())
HEADERS = bearer(APP)
SUBSCRIBERS = 3  # investors holding an open subscription on the SPV: uploads address them
NEWCOMERS = 8  # investors without one: subscription creates can succeed for them, once each


def _seed_state(app: Starlette) -> dict[str, list[str]]:
    """Resources for positive cases, as schemathesis dictionaries (name -> values)."""
    client = TestClient(app)
    approved = create_spv_request(client, HEADERS).json()["spvRequestSlug"]
    spv = client.post(f"/_mock/admin/spv-requests/{approved}/approve").json()
    pending = [create_spv_request(client, HEADERS).json()["spvRequestSlug"] for _ in range(3)]
    vehicle = spv["materialisedRefs"]["vehicleSlug"]
    share_class = spv["feesAndCarry"]["shareClasses"][0]["slug"]
    currency = spv["attributes"]["currency"]
    people = [investor(client, HEADERS, f"st-inv-{n}") for n in range(SUBSCRIBERS + NEWCOMERS)]
    rows = [{"zestPersonId": person, "lumpSum": {"currency": currency, "value": "1000.00"},
             "shareClassSlug": share_class} for person in people[:SUBSCRIBERS]]
    response = client.post(f"/v1/spvs/{vehicle}/subscriptions", json={"subscriptions": rows}, headers=HEADERS)
    assert response.status_code == 201, response.text
    rt = app.state.rt
    assertion = mint_assertion(DEV, dev_partner_private_key(), rt.settings.expected_audience,
                               now=rt.clock.now().timestamp(), lifetime=300)
    return {"spv_requests": [approved, *pending], "vehicles": [vehicle], "share_classes": [share_class],
            "currencies": [currency], "subscribers": people[:SUBSCRIBERS], "newcomers": people[SUBSCRIBERS:],
            "assertions": [assertion]}


def _config(dictionaries: dict[str, list[str]]) -> schemathesis.Config:
    data = tomllib.loads((ROOT / "schemathesis.toml").read_text())
    data["auth"] = {"openapi": {"HTTPBearer": {"bearer": HEADERS["Authorization"].removeprefix("Bearer ")}}}
    data.setdefault("dictionaries", {}).update({name: {"values": values} for name, values in dictionaries.items()})
    return schemathesis.Config.from_dict(data, base_dir=str(ROOT))


schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=_config(_seed_state(APP)))
DOCUMENT: dict[str, Any] = APP.state.openapi["partner"]

# 400 validation_error entries that judge a schema-valid body against stored data: (field regex, code).
STORED_DATA_RULES: dict[str, list[tuple[str, str]]] = {
    # attributes are checked against the contract template named by templateId/templateVersion
    "createSpvRequest": [(r"attributes([.\[].*)?", ".*")],
    # share class and currency must be the SPV's own
    "createSubscriptions": [(r"subscriptions\[\d+\]\.shareClassSlug", "enum"),
                            (r"subscriptions\[\d+\]\.lumpSum\.currency", "currency_mismatch")],
}


def stored_data_aware_positive_acceptance(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """``positive_data_acceptance``, except a 400 that only reports rules on stored data (``STORED_DATA_RULES``)."""
    rules = STORED_DATA_RULES.get(_operation_id(case), [])
    if rules and response.status_code == 400:
        body = response.json()
        entries = body.get("validationErrors") or []
        if body.get("code") == "validation_error" and entries and all(
            any(re.fullmatch(field, e["field"], re.DOTALL) and re.fullmatch(code, e["code"]) for field, code in rules)
            for e in entries
        ):
            return None
    return positive_data_acceptance(ctx, response, case)


ROW_SCHEMA = jsonschema_rs.validator_for(
    {"$ref": "#/components/schemas/InvestorCreateRow", "components": DOCUMENT["components"]}, validate_formats=True
)


def investor_rows_fail_alone(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """``negative_data_rejection`` for ``bulkCreateInvestors``, where a bad row fails alone with ``200``.

    A request that is well formed outside its rows must answer 200 with one result per row: ``failed`` for each
    row the schema refuses, never a validation failure for a row it accepts. Anything else is judged as usual.
    """
    body = case.body
    rows_only = (
        response.status_code == 200
        and isinstance(body, dict) and set(body) == {"investors"}
        and isinstance(body["investors"], list) and len(body["investors"]) <= 500
        and case.meta is not None
        and all(info.mode.is_positive for where, info in case.meta.components.items() if where != "body")
    )
    if rows_only:
        results = response.json()["results"]
        assert len(results) == len(body["investors"]), "one result per row"
        for index, (row, result) in enumerate(zip(body["investors"], results, strict=True)):
            if not ROW_SCHEMA.is_valid(row):
                assert result["status"] == "failed", f"row {index} violates InvestorCreateRow but was {result}"
            else:
                error = result.get("error") or {}
                assert error.get("code") != "validation_error", f"row {index} is schema-valid but failed: {result}"
        return None
    return negative_data_rejection(ctx, response, case)


def _sent_form(request: Any) -> dict[str, Any] | None:
    """The fields of a form-encoded request as they went over the wire (a repeated field as a list)."""
    content_type = request.headers.get("Content-Type", "")
    body = request.body or b""
    raw = body.encode() if isinstance(body, str) else bytes(body)
    fields: dict[str, list[str]] = {}
    if content_type.startswith("application/x-www-form-urlencoded"):
        try:
            fields = parse_qs(raw.decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            return None
    elif content_type.startswith("multipart/form-data"):
        message = email.message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw,
                                           policy=email.policy.HTTP)
        for part in message.iter_parts():
            name, payload = part.get_param("name", header="content-disposition"), part.get_payload(decode=True)
            if not isinstance(name, str) or not isinstance(payload, bytes):
                return None
            try:  # a file part is binary: any string stands for it
                value = payload.decode("latin-1") if part.get_filename() is not None else payload.decode()
            except UnicodeDecodeError:
                return None
            fields.setdefault(name, []).append(value)
    else:
        return None
    return {name: values[0] if len(values) == 1 else values for name, values in fields.items()}


def _body_validator(operation_id: str) -> Any:
    for methods in DOCUMENT["paths"].values():
        for spec in methods.values():
            if spec["operationId"] == operation_id:
                (content,) = spec["requestBody"]["content"].values()
                return jsonschema_rs.validator_for({**content["schema"], "components": DOCUMENT["components"]})
    raise LookupError(operation_id)


FORM_OPERATIONS = ("exchangeJwtAssertion", "uploadSubscriptionForm", "uploadFundingReceipt")
FORM_BODIES = {operation_id: _body_validator(operation_id) for operation_id in FORM_OPERATIONS}


def negative_data_rejection_on_the_wire(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """``negative_data_rejection`` unless the only negative part, the form body, is valid as it was sent."""
    sent = _sent_form(response.request)
    if (
        sent is not None and FORM_BODIES[_operation_id(case)].is_valid(sent)
        and case.meta is not None
        and all(info.mode.is_positive for where, info in case.meta.components.items() if where != "body")
    ):
        return None
    return negative_data_rejection(ctx, response, case)


NARROWED: dict[str, tuple[list[Any], list[Any]]] = {
    "createSpvRequest": ([positive_data_acceptance], [stored_data_aware_positive_acceptance]),
    "createSubscriptions": ([positive_data_acceptance], [stored_data_aware_positive_acceptance]),
    "bulkCreateInvestors": ([negative_data_rejection], [investor_rows_fail_alone]),
    **{operation_id: ([negative_data_rejection], [negative_data_rejection_on_the_wire])
       for operation_id in FORM_OPERATIONS},
}
_KEYS = itertools.count(1)


def _operation_id(case: Case) -> str:
    return str(case.operation.definition.raw.get("operationId", ""))


def _unique_idempotency_key(case: Case) -> None:
    """Make each request's valid Idempotency-Key its own, by a counter suffix within the 255-character bound.

    Coverage cases share one template key, so without this nearly every write after the first answers 409 (same
    key, another body) before its body is judged. Keys the generator made invalid (empty, too long) stay as they
    are; the replay and conflict rules have their own tests.
    """
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and 1 <= len(key) <= 255:
        suffix = f"~st{next(_KEYS)}"
        headers["Idempotency-Key"] = key[: 255 - len(suffix)] + suffix


def _label_file_part(case: Case) -> None:
    """Send the ``file`` part labelled with the type of its bytes when schemathesis recorded none.

    Schemathesis 4.32.5, examples phase: the part's bytes are one of its own sample files (a PNG, a JPEG...), but
    no choice of media type is recorded, so the part leaves labelled with the first type the encoding lists
    (``application/pdf``) whatever the bytes are, and the mock rightly answers 415 to a PNG declared as a PDF.
    """
    body = case.body
    if case.multipart_content_types is None and isinstance(body, dict) and "file" in body:
        data = getattr(body["file"], "data", body["file"])
        media_type = st_hooks.media_type_of(data) if isinstance(data, bytes) else None
        if media_type is not None:
            case.multipart_content_types = {"file": media_type}


@schema.parametrize()
def test_partner_api(case: Case) -> None:
    _unique_idempotency_key(case)
    _label_file_part(case)
    excluded, additional = NARROWED.get(_operation_id(case), ([], []))
    case.call_and_validate(excluded_checks=excluded, additional_checks=additional)
