"""The operation registry is the whole contract of an endpoint: what each declares (secured, provisioned,
Idempotency-Key mode, transaction) is what the wire does, in one order (401, 403, body syntax, Idempotency-Key,
body validation), and what the served document shows. Table-driven over the registry, so a new operation is
covered the day it is declared."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from support import bearer, runtime

from mock_server.app import all_operations, partner_document
from mock_server.domain import partners
from mock_server.harness import documents
from mock_server.harness.st_support import PARAMETERS
from mock_server.http.common import errors
from mock_server.http.operations import Answer, Operation

PUBLISHED = Path(__file__).resolve().parent.parent.parent / "shared" / "reference" / "zest-openapi.json"
OPERATIONS = all_operations()
PROVISIONED = [op for op in OPERATIONS if op.provisioned]
KEYED = [op for op in OPERATIONS if op.idempotency != "none"]


async def _never(call: Any) -> Any:
    raise AssertionError("not called")


def _path(op: Operation) -> str:
    return re.sub(r"\{\w+\}", "nosuchthing", op.path)


def _unprovisioned(app: Starlette) -> dict[str, str]:
    rt = runtime(app)
    partners.register(rt.store, rt.clock, rt.ids, client_id="unprovisioned", tenant_slug="nope", provisioned=False)
    return bearer(app, "unprovisioned")


@pytest.mark.skipif(not PUBLISHED.is_file(), reason=f"the published document is not at {PUBLISHED}")
def test_the_registry_declares_provisioning_and_idempotency_as_published() -> None:
    published = documents.operations(json.loads(PUBLISHED.read_text()))
    assert {op.operation_id for op in PROVISIONED} == {op.operation_id for op in published
                                                       if "403" in op.spec["responses"]}
    assert {op.operation_id: op.idempotency for op in KEYED} == {op.operation_id: op.idempotency()
                                                                 for op in published if op.idempotency() != "none"}


@pytest.mark.parametrize("declaration", [
    {"provisioned": True},  # not secured
    {"provisioned": True, "secured": True, "answers": {201: Answer("Created")}},  # no 403
    {"idempotency": "required", "secured": True, "answers": errors(409)},  # not transactional
    {"idempotency": "optional", "secured": True, "transaction": True, "answers": errors(400)},  # no 409
])
def test_an_incoherent_declaration_is_refused_at_import(declaration: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"answers": errors(403, 409), **declaration}
    with pytest.raises(ValueError, match="createThing"):
        Operation("POST", "/v1/things", "createThing", "Things", "Create a thing", _never, **fields)


def test_the_served_document_shows_each_operations_idempotency_mode() -> None:
    served = {op.operation_id: op.idempotency() for op in documents.operations(partner_document())}
    assert served == {op.operation_id: op.idempotency for op in OPERATIONS if op.plane == "partner"}
    assert documents.keyed_writes(partner_document()) == {op.operation_id for op in KEYED}


@pytest.mark.parametrize("op", PROVISIONED, ids=lambda op: op.operation_id)
def test_an_unprovisioned_partner_gets_403_before_its_body_or_key_is_looked_at(
        app: Starlette, client: TestClient, op: Operation) -> None:
    unprovisioned = _unprovisioned(app)
    assert client.request(op.method, _path(op), content=b"{not json").status_code == 401  # 401 before 403
    response = client.request(op.method, _path(op), content=b"{not json",
                              headers={**unprovisioned, "Content-Type": "application/json"})
    assert response.status_code == 403 and response.json()["code"] == "forbidden", response.text


@pytest.mark.parametrize("op", [op for op in OPERATIONS if op.secured and not op.provisioned and op.plane == "partner"],
                         ids=lambda op: op.operation_id)
def test_an_unprovisioned_partner_may_call_what_needs_no_provisioning(
        app: Starlette, client: TestClient, op: Operation) -> None:
    response = client.request(op.method, _path(op), headers=_unprovisioned(app))
    assert response.status_code in (200, 404), response.text


@pytest.mark.parametrize("op", KEYED, ids=lambda op: op.operation_id)
def test_the_idempotency_key_is_checked_after_the_body_syntax_and_before_its_validation(
        client: TestClient, headers: dict[str, str], op: Operation) -> None:
    malformed = client.request(op.method, _path(op), content=b"{not json",
                               headers={**headers, "Content-Type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["detail"].startswith("malformed JSON"), malformed.text
    empty = client.request(op.method, _path(op), json={"unknown": 1}, headers={**headers, "Idempotency-Key": " "})
    assert empty.json()["detail"] == "Idempotency-Key must not be empty", empty.text
    keyless = client.request(op.method, _path(op), json={"unknown": 1}, headers=headers)
    keyed = client.request(op.method, _path(op), json={"unknown": 1}, headers={**headers, "Idempotency-Key": "k"})
    assert keyed.status_code == 400 and keyed.json()["code"] == "validation_error", keyed.text
    if op.idempotency == "required":
        assert keyless.json()["detail"] == "Idempotency-Key header is required on this endpoint", keyless.text
    else:
        assert keyless.json() | {"errorId": None} == keyed.json() | {"errorId": None}


def test_every_path_parameter_of_the_partner_api_draws_on_created_resources_when_fuzzed() -> None:
    """``st_support.PARAMETERS`` names a dictionary for each path parameter the served document has; otherwise the
    fuzzer would only ever reach that operation's 404."""
    served = {f"path.{name}" for op in documents.operations(partner_document()) for name in op.path_parameters}
    assert served <= set(PARAMETERS), sorted(served - set(PARAMETERS))
