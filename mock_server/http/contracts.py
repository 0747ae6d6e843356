"""Routes of the Contracts tag: the nine read-only views of the contract registry (no auth, as published)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from mock_server.contracts import ContractRegistry
from mock_server.http.bodies import json_response
from mock_server.http.common import errors
from mock_server.http.operations import Answer, Call, Operation, Param


class ContractDocument(BaseModel):
    """Any contract registry document (the published schema leaves these bodies open)."""

    model_config = ConfigDict(extra="allow")


_KINDS = (
    # (path segment, item parameter, list operationId, get operationId, noun)
    ("templates", "template_name", "list_templates_v1_contracts_templates__version__get",
     "get_template_v1_contracts_templates__version___template_name__get", "template"),
    ("catalogs", "catalog_name", "list_catalogs_v1_contracts_catalogs__version__get",
     "get_catalog_v1_contracts_catalogs__version___catalog_name__get", "attribute catalog"),
    ("primitives", "primitive_name", "list_primitives_v1_contracts_primitives__version__get",
     "get_primitive_v1_contracts_primitives__version___primitive_name__get", "primitive type"),
    ("samples", "sample_name", "list_samples_v1_contracts_samples__version__get",
     "get_sample_v1_contracts_samples__version___sample_name__get", "sample payload"),
)
_VERSION = Param("version", "path", {"type": "string"}, True, "Contract version, e.g. 1.0.0")


def _handler(read: Callable[[ContractRegistry, dict[str, Any]], Any]) -> Callable[[Call], Any]:
    async def handle(call: Call) -> Response:
        return json_response(read(call.rt.contracts, call.request.path_params))

    return handle


def _operations() -> list[Operation]:
    ops = [Operation(
        "GET", "/v1/contracts", "list_contract_versions_v1_contracts_get", "Contracts",
        "List available contract versions", _handler(lambda reg, _: reg.versions()),
        {200: Answer("Contract versions", ContractDocument)},
    )]
    for kind, item, list_id, get_id, noun in _KINDS:
        ops.append(Operation(
            "GET", f"/v1/contracts/{kind}/{{version}}", list_id, "Contracts", f"List the {noun}s of a version",
            _handler(lambda reg, p, k=kind: getattr(reg, k)(p["version"])),
            {200: Answer(f"The {noun}s", ContractDocument), **errors(404)}, params=(_VERSION,),
        ))
        ops.append(Operation(
            "GET", f"/v1/contracts/{kind}/{{version}}/{{{item}}}", get_id, "Contracts", f"Get one {noun}",
            _handler(lambda reg, p, k=kind, i=item: getattr(reg, k.rstrip("s"))(p["version"], p[i])),
            {200: Answer(f"The {noun}", ContractDocument), **errors(404)},
            params=(_VERSION, Param(item, "path", {"type": "string"}, True)),
        ))
    return ops


OPERATIONS = _operations()
