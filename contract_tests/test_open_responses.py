"""The served documents keep every response schema open, as Zest's are: a client validating with them accepts the
fields Zest adds later. Request schemas are closed only where the mock refuses unknown fields."""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs
import pytest
from starlette.testclient import TestClient
from support import approved_spv, bearer, settings

from mock_server.app import create_app

DOCUMENTS = ("/openapi.json", "/_mock/openapi.json")


def response_schemas(document: dict[str, Any]) -> list[str]:
    """Names of the component schemas that responses refer to."""
    found = []
    for methods in document["paths"].values():
        for spec in methods.values():
            for answer in spec["responses"].values():
                for media in answer.get("content", {}).values():
                    ref = media["schema"].get("$ref", "")
                    found.append(ref.rsplit("/", 1)[-1])
    return sorted({name for name in found if name})


def validator(document: dict[str, Any], name: str) -> Any:
    return jsonschema_rs.validator_for({"$ref": f"#/components/schemas/{name}", "components": document["components"]})


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("path", DOCUMENTS)
def test_no_response_schema_is_closed(path: str, strict: bool) -> None:
    with TestClient(create_app(settings(strict_fields=strict))) as client:
        document = client.get(path).json()
    schemas = document["components"]["schemas"]
    names = response_schemas(document)
    assert len(names) >= (8 if path == "/openapi.json" else 10)
    closed = [name for name in names if '"additionalProperties": false' in json.dumps(schemas[name])]
    assert closed == []
    requests_closed = [n for n, s in schemas.items() if '"additionalProperties": false' in json.dumps(s)]
    if path == "/openapi.json" and not strict:
        assert requests_closed == []  # the partner API ignores unknown fields by default
    else:
        assert "SpvRequestCreate" in requests_closed or "AdvanceBody" in requests_closed


def test_a_response_with_fields_zest_adds_later_validates_against_the_served_document() -> None:
    app = create_app(settings())
    with TestClient(app) as client:
        headers = bearer(app)
        approved = approved_spv(client, headers)
        response = client.get(f"/v1/spv-requests/{approved['spvRequestSlug']}", headers=headers).json()
        clock = client.get("/_mock/clock").json()
        partner_doc, control_doc = (client.get(path).json() for path in DOCUMENTS)
    later = {**response, "riskScore": 3, "materialisedRefs": {**response["materialisedRefs"], "fundSlug": "f_1"},
             "feesAndCarry": {"shareClasses": [{**response["feesAndCarry"]["shareClasses"][0], "hurdle": "8.0"}]}}
    spv_request = validator(partner_doc, "SpvRequestResponse")
    assert spv_request.is_valid(response) and spv_request.is_valid(later)
    assert not spv_request.is_valid({k: v for k, v in later.items() if k != "status"})  # the schema still judges
    clock_state = validator(control_doc, "ClockState")
    assert clock_state.is_valid({**clock, "timezone": "UTC"})
    assert not clock_state.is_valid({**clock, "mode": "sideways"})
