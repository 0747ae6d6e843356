"""Schemathesis pieces shared by the contract runs in ``contract_tests/`` and by ``zest-mock conformance``.

- real upload bytes: one tiny valid file per accepted media type, registered as schemathesis media-type strategies
  (the upload schemas name them in ``encoding``), and ``label_file_part`` for the examples phase;
- ``unique_idempotency_key``: one key per request, so writes are judged on their body, not answered 409;
- ``narrowed_checks(document)``: checks narrowed (never dropped) where a schema cannot say what the contract says or
  where schemathesis labels a request negative that is not negative on the wire (each function says which);
- ``seed_mock``: resources on a mock (an approved SPV, investors, subscriptions, pending SPV requests) whose slugs,
  given to schemathesis as dictionaries, let positive cases reach 2xx answers instead of only 404;
- ``project_config``: a ``schemathesis.Config`` from plain data, the bearer token and those dictionaries.

Importing this module needs schemathesis (the ``test`` or ``conformance`` extra).
"""

from __future__ import annotations

import base64
import email
import email.policy
import itertools
import json
import re
import uuid
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

import httpx
import jsonschema_rs
import schemathesis
from hypothesis import strategies as st
from schemathesis import Case, CheckContext, Response
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from mock_server.harness.control_client import ControlClient

Check = Callable[[CheckContext, Response, Case], bool | None]
Narrowing = tuple[list[Check], list[Check]]  # (checks excluded, checks added in their place)

_PDF = b"""%PDF-1.4
1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj
2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj
3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] >> endobj
trailer << /Size 4 /Root 1 0 R >>
%%EOF
"""
SAMPLE_FILES: dict[str, bytes] = {  # the same tiny files as the repository's fixtures/
    "application/pdf": _PDF,
    "image/jpeg": base64.b64decode(
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB"
        "AQEBAQEBAQEBAQEBAQH/wAALCAAIAAgBAREA/8QAJgABAAAAAAAAAAAAAAAAAAAAABABAAAAAAAAAAAAAAAAAAAAAP/aAAgBAQAA"
        "PwA//9k="),
    "image/png": base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR42mNQaHAAIgYIBQAYDgOBD/R0VAAAAABJRU5ErkJggg=="),
    "image/webp": base64.b64decode("UklGRhgAAABXRUJQVlA4TAwAAAAvAAAAAChgQQrU/wA="),
}


def register_media_types() -> None:
    """Send these files for ``format: binary`` parts whose ``encoding`` names their type (idempotent, global)."""
    for media_type, data in SAMPLE_FILES.items():
        schemathesis.openapi.media_type(media_type, st.just(data))


# ---- per-case fixes -----------------------------------------------------------------------------------------------

_KEYS = itertools.count(1)


def operation_id(case: Case) -> str:
    return str(case.operation.definition.raw.get("operationId", ""))


def unique_idempotency_key(case: Case) -> None:
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


def label_file_part(case: Case) -> None:
    """Send the ``file`` part labelled with the type of its bytes when schemathesis recorded none.

    Schemathesis 4.32.5, examples phase: the part's bytes are one of its own sample files (a PNG, a JPEG...), but
    no choice of media type is recorded, so the part leaves labelled with the first type the encoding lists
    (``application/pdf``) whatever the bytes are, and the mock rightly answers 415 to a PNG declared as a PDF.
    """
    body = case.body
    if case.multipart_content_types is None and isinstance(body, dict) and "file" in body:
        data = getattr(body["file"], "data", body["file"])
        media_type = media_type_of(data) if isinstance(data, bytes) else None
        if media_type is not None:
            case.multipart_content_types = {"file": media_type}


def media_type_of(data: bytes) -> str | None:
    """The accepted upload type ``data`` is a file of, by its signature, as a client labels a file it sends."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    signatures = {b"%PDF-": "application/pdf", b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}
    return next((media_type for magic, media_type in signatures.items() if data.startswith(magic)), None)


def prepare_case(case: Case) -> None:
    unique_idempotency_key(case)
    label_file_part(case)


# ---- narrowed checks ----------------------------------------------------------------------------------------------

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
    rules = STORED_DATA_RULES.get(operation_id(case), [])
    if rules and response.status_code == 400:
        body = response.json()
        entries = body.get("validationErrors") or []
        if body.get("code") == "validation_error" and entries and all(
            any(re.fullmatch(field, e.get("field") or e.get("attribute") or "", re.DOTALL)
                and re.fullmatch(code, e["code"]) for field, code in rules)
            for e in entries
        ):
            return None
    return positive_data_acceptance(ctx, response, case)


def _only_body_is_negative(case: Case) -> bool:
    return case.meta is not None and all(
        info.mode.is_positive for where, info in case.meta.components.items() if where != "body")


def investor_rows_fail_alone(row_schema: Any, *, judge_valid_rows: bool) -> Check:
    """``negative_data_rejection`` for ``bulkCreateInvestors``, where a bad row fails alone with ``200``.

    A request that is well formed outside its rows must answer 200 with one result per row, ``failed`` for each
    row the schema refuses; with ``judge_valid_rows``, never a validation failure for a row it accepts (that half
    is positive-data acceptance, so a run against a looser published schema leaves it out). Anything else is
    judged as usual.
    """

    def check(ctx: CheckContext, response: Response, case: Case) -> bool | None:
        body = case.body
        rows_only = (
            response.status_code == 200
            and isinstance(body, dict) and "investors" in body  # other top-level fields are ignored
            and isinstance(body["investors"], list) and len(body["investors"]) <= 500
            and _only_body_is_negative(case)
        )
        if not rows_only:
            return negative_data_rejection(ctx, response, case)
        results = response.json()["results"]
        assert len(results) == len(body["investors"]), "one result per row"
        for index, (row, result) in enumerate(zip(body["investors"], results, strict=True)):
            if not row_schema.is_valid(row):
                assert result["status"] == "failed", f"row {index} violates InvestorCreateRow but was {result}"
            elif judge_valid_rows:
                error = result.get("error") or {}
                assert error.get("code") != "validation_error", f"row {index} is schema-valid but failed: {result}"
        return None

    check.__name__ = "investor_rows_fail_alone"
    return check


def sent_form(request: Any) -> dict[str, Any] | None:
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


def negative_on_the_wire(body_schema: Any) -> Check:
    """``negative_data_rejection`` unless the only negative part, the form body, is valid as it was sent.

    A form field is text: a "number instead of string" mutation that leaves as the string ``0.0`` is a valid
    request, not a negative one, whatever schemathesis labelled it.
    """

    def check(ctx: CheckContext, response: Response, case: Case) -> bool | None:
        sent = sent_form(response.request)
        if sent is not None and body_schema.is_valid(sent) and _only_body_is_negative(case):
            return None
        return negative_data_rejection(ctx, response, case)

    check.__name__ = "negative_data_rejection_on_the_wire"
    return check


FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def narrowed_checks(document: Mapping[str, Any], *, judge_positive: bool) -> dict[str, Narrowing]:
    """operationId -> (checks excluded, checks added) for ``call_and_validate``; ``judge_positive`` when the run
    also judges positive data (the in-process runs against the mock's own, exact document)."""
    components = document.get("components", {})
    narrowed: dict[str, Narrowing] = {}
    for spec in _operations(document):
        content = (spec.get("requestBody") or {}).get("content") or {}
        if len(content) == 1 and next(iter(content)) in FORM_MEDIA_TYPES:
            (media,) = content.values()
            validator = jsonschema_rs.validator_for({**media.get("schema", {}), "components": components})
            narrowed[spec["operationId"]] = ([negative_data_rejection], [negative_on_the_wire(validator)])
    if "InvestorCreateRow" in components.get("schemas", {}):
        row = jsonschema_rs.validator_for({"$ref": "#/components/schemas/InvestorCreateRow", "components": components},
                                          validate_formats=True)
        narrowed["bulkCreateInvestors"] = ([negative_data_rejection],
                                           [investor_rows_fail_alone(row, judge_valid_rows=judge_positive)])
    if judge_positive:
        for name in STORED_DATA_RULES:
            excluded, added = narrowed.get(name, ([], []))
            narrowed[name] = ([*excluded, positive_data_acceptance], [*added, stored_data_aware_positive_acceptance])
    return narrowed


def _operations(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [spec for methods in document.get("paths", {}).values() for spec in methods.values()
            if isinstance(spec, dict) and "operationId" in spec]


# ---- state on a mock, and the config that points the fuzzer at it ------------------------------------------------

# Fuzzed parameter -> (dictionary, probability): part of the time, values point at seeded resources.
# Fuzzed parameters that draw from the dictionaries of created resources (name -> (dictionary, probability)):
# the one mapping, for the project's schemathesis tests and for `zest-mock conformance`.
PARAMETERS: dict[str, tuple[str, float]] = {
    "path.spv_slug": ("vehicles", 0.7),
    "path.person_id": ("subscribers", 0.7),
    "path.slug": ("spv_requests", 0.5),
    "body.subscriptions[*].zestPersonId": ("newcomers", 0.9),
    "body.subscriptions[*].shareClassSlug": ("share_classes", 0.9),
    "body.subscriptions[*].lumpSum.currency": ("currencies", 0.9),
    "body.templateId": ("templates", 0.5),
    "body.templateVersion": ("contract_versions", 0.5),
    "path.version": ("contract_versions", 0.7),
    "path.template_name": ("templates", 0.7),
    "path.catalog_name": ("templates", 0.7),
    "path.sample_name": ("templates", 0.7),
    "path.primitive_name": ("primitives", 0.7),
    "body.assertion": ("assertions", 0.5),
}


_CONTRACTS = resources.files("mock_server").joinpath("data", "contracts", "1.0.0")


def sample_spv_request() -> dict[str, Any]:
    """The shipped contract sample: a create-SPV-request body the mock accepts."""
    return dict(json.loads(_CONTRACTS.joinpath("samples", "syndicate_secondary.json").read_text()))


def seed_mock(client: httpx.Client, headers: Mapping[str, str], *, subscribers: int = 3, newcomers: int = 8,
              pending: int = 3) -> dict[str, list[str]]:
    """Resources for positive cases on a mock (``client`` has its base URL), as dictionaries (name -> values).

    An approved SPV (approved through the control plane), ``pending`` SPV requests, ``subscribers`` investors with
    an open subscription on the SPV (uploads address them) and ``newcomers`` without one (a subscription create
    can succeed for each, once).
    """
    sample = sample_spv_request()

    def create() -> str:
        response = client.post("/v1/spv-requests", json=sample,
                               headers={**headers, "Idempotency-Key": str(uuid.uuid4())})
        response.raise_for_status()
        return str(response.json()["spvRequestSlug"])

    approved = create()
    spv = ControlClient(str(client.base_url), http=client).approve(approved)
    vehicle = spv["materialisedRefs"]["vehicleSlug"]
    share_class = spv["feesAndCarry"]["shareClasses"][0]["slug"]
    currency = spv["attributes"]["currency"]
    tag = uuid.uuid4().hex[:8]
    rows = [{"partnerInvestorId": f"st-{tag}-{n}", "email": f"st-{n}@example.com", "firstName": "Alice",
             "lastName": "Liddell", "dateOfBirth": "1985-04-12", "countryOfResidence": "AE"}
            for n in range(subscribers + newcomers)]
    response = client.post("/v1/investors", json={"investors": rows}, headers=dict(headers))
    response.raise_for_status()
    people = [str(result["zestPersonId"]) for result in response.json()["results"]]
    subscriptions = [{"zestPersonId": person, "lumpSum": {"currency": currency, "value": "1000.00"},
                      "shareClassSlug": share_class} for person in people[:subscribers]]
    response = client.post(f"/v1/spvs/{vehicle}/subscriptions", json={"subscriptions": subscriptions},
                           headers=dict(headers))
    response.raise_for_status()
    return {"spv_requests": [approved, *(create() for _ in range(pending))], "vehicles": [vehicle],
            "share_classes": [share_class], "currencies": [currency], "subscribers": people[:subscribers],
            "newcomers": people[subscribers:], "templates": [sample["templateId"]],
            "contract_versions": [sample["templateVersion"]],
            "primitives": sorted(p.name.removesuffix(".json") for p in _CONTRACTS.joinpath("primitives").iterdir())}


def project_config(data: Mapping[str, Any], *, token: str | None, dictionaries: Mapping[str, list[str]],
                   scheme: str = "HTTPBearer", parameters: Mapping[str, tuple[str, float]] | None = None,
                   base_dir: str | None = None) -> schemathesis.Config:
    """``data`` (a schemathesis.toml as a dict) with the bearer token for ``scheme`` and the dictionaries.

    ``parameters`` (default: none added) maps fuzzed parameters to dictionaries; only those whose dictionary has
    values are kept. Dictionaries given replace same-named ones in ``data``.
    """
    merged: dict[str, Any] = json.loads(json.dumps(dict(data)))
    if token is not None:
        merged["auth"] = {"openapi": {scheme: {"bearer": token}}}
    filled = {name: list(values) for name, values in dictionaries.items() if values}
    merged.setdefault("dictionaries", {}).update({name: {"values": values} for name, values in filled.items()})
    for parameter, (dictionary, probability) in (parameters or {}).items():
        if dictionary in merged["dictionaries"]:
            merged.setdefault("parameters", {})[parameter] = {"dictionary": dictionary, "probability": probability}
    return schemathesis.Config.from_dict(merged, **({"base_dir": base_dir} if base_dir else {}))
