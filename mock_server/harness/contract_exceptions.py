"""THE list of documented exceptions: where the published OpenAPI document and the docs disagree.

The mock follows the docs (reference ``zest-partner-api.md`` §5.1, §5.2). A conformance run against a published
document (``zest-mock conformance --spec zest-openapi.json``) must know each disagreement, or it would fail a
server for doing what the docs say. Each row names the operations, both versions, the reason with its reference
section, and how conformance treats it; ``apply_exceptions`` writes the documented behaviour into a copy of a
document so the schema checks accept it. A run prints every row and reports each as a passing JUnit testcase, so
nothing is excluded silently.

Exceptions only ever widen what is accepted (the published 422, for one, stays acceptable). On the mock's own
document they change nothing: it already declares what the mock answers.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Document = dict[str, Any]
ENVELOPE = "PartnerErrorResponse"
_ENVELOPE_SCHEMA: dict[str, Any] = {  # used only when a document lacks the published envelope schema
    "type": "object", "required": ["code"],
    "properties": {"code": {"type": "string"}, "detail": {"type": "string"}, "errorId": {"type": "string"},
                   "validationErrors": {"type": "array", "items": {"type": "object"}}},
}


@dataclass(frozen=True)
class ContractException:
    id: str  # Cn: a contradiction of reference §5.1; Dn: a documented behaviour the published document leaves out
    title: str
    operations: str
    published: str  # what the published OpenAPI document says
    documented: str  # what the docs say, which is what the mock does
    reason: str  # why, with the reference section
    treatment: str  # how a conformance run treats it
    apply: Callable[[Document], list[str]] = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "title": self.title, "operations": self.operations, "published": self.published,
                "documented": self.documented, "reason": self.reason, "treatment": self.treatment}


@dataclass(frozen=True)
class AppliedException:
    """An exception in effect for one run, with what it changed in that run's document (often nothing)."""

    exception: ContractException
    changes: tuple[str, ...]

    @property
    def summary(self) -> str:
        return f"{self.exception.id} {self.exception.title}: {self.exception.treatment}"

    @property
    def changes_text(self) -> str:
        return "; ".join(self.changes) if self.changes else "no change to this document"

    def to_dict(self) -> dict[str, Any]:
        return {**self.exception.to_dict(), "changes": list(self.changes)}


# ---- document edits -----------------------------------------------------------------------------------------------

def _operations(document: Document) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document.get("paths", {}).items():
        for method, spec in methods.items():
            if isinstance(spec, dict) and "responses" in spec:
                yield path, method, spec


def _envelope_ref(document: Document) -> dict[str, str]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(ENVELOPE, copy.deepcopy(_ENVELOPE_SCHEMA))
    return {"$ref": f"#/components/schemas/{ENVELOPE}"}


def _add_envelope(document: Document, spec: dict[str, Any], status: int, description: str) -> bool:
    responses = spec["responses"]
    if str(status) in responses:
        return False
    responses[str(status)] = {"description": description,
                              "content": {"application/json": {"schema": _envelope_ref(document)}}}
    return True


def _add_to_each(document: Document, status: int, description: str,
                 wanted: Callable[[str, dict[str, Any]], bool]) -> list[str]:
    added = [spec.get("operationId", f"{method.upper()} {path}") for path, method, spec in _operations(document)
             if wanted(path, spec) and _add_envelope(document, spec, status, description)]
    return [f"{status} envelope added to {len(added)} operation(s): {', '.join(added)}"] if added else []


def _add_properties(document: Document, schema_name: str, properties: dict[str, Any]) -> list[str]:
    schema = document.get("components", {}).get("schemas", {}).get(schema_name)
    if not isinstance(schema, dict):
        return []
    present = schema.setdefault("properties", {})
    added = [name for name in properties if name not in present]
    present.update({name: properties[name] for name in added})
    return [f"{schema_name} gains {', '.join(added)}"] if added else []


def _declares_422(_: str, spec: dict[str, Any]) -> bool:
    return "422" in spec["responses"]


def _c5(document: Document) -> list[str]:
    return _add_to_each(document, 400, "Invalid request or validation error (Zest envelope)", _declares_422)


def _c6(document: Document) -> list[str]:
    return _add_to_each(document, 400, "Missing Idempotency-Key (invalid_request)",
                        lambda _, spec: spec.get("operationId") == "createSpvRequest")


def _c2(document: Document) -> list[str]:
    return _add_properties(document, "TokenResponse", {"tokenType": {"type": "string"},
                                                       "expiresIn": {"type": "integer"}})


def _c4(document: Document) -> list[str]:
    return _add_properties(document, "PartnerValidationError", {"field": {"type": "string"}, "value": {}})


def _d1(document: Document) -> list[str]:
    def checks_credentials(_: str, spec: dict[str, Any]) -> bool:
        return bool(spec.get("security")) or spec.get("operationId") == "exchangeJwtAssertion"

    return _add_to_each(document, 401, "Invalid token (invalid_token)", checks_credentials)


def _d2(document: Document) -> list[str]:
    return _add_to_each(document, 404, "Unknown contract version or name (not_found)",
                        lambda path, _: path.startswith("/v1/contracts/"))


def _d3(document: Document) -> list[str]:
    for path, method, spec in _operations(document):
        if method == "get" and path == "/docs":
            content = spec["responses"].setdefault("200", {"description": "Swagger UI"}).setdefault("content", {})
            if "text/html" not in content:
                content["text/html"] = {"schema": {"type": "string"}}
                return ["GET /docs may answer text/html"]
    return []


def _no_document_change(_: Document) -> list[str]:
    return []


EXCEPTIONS: tuple[ContractException, ...] = (
    ContractException(
        "C5", "400 envelope instead of 422", "every operation that declares 422",
        published="422 with FastAPI's HTTPValidationError {detail: [{loc, msg, type}]} for bad parameters or bodies",
        documented="every non-2xx answer is the Zest envelope {code, detail, errorId, validationErrors?}; bad "
                   "parameters, headers or bodies are 400 invalid_request or validation_error; never 422",
        reason="the errors page puts every non-2xx in the envelope (reference §1.6, §5.1 C5, §5.2 #16)",
        treatment="a 400 envelope is accepted where the published document declares 422 (422 stays accepted)",
        apply=_c5),
    ContractException(
        "C6", "missing Idempotency-Key is 400", "createSpvRequest",
        published="the Idempotency-Key header is required, so a framework answers its absence with 422",
        documented="400 invalid_request when the header is missing",
        reason="idempotency and errors pages (reference §1.4, §5.1 C6)",
        treatment="a request without the header must be refused with the 400 envelope (missing_required_header "
                  "accepts 400)",
        apply=_c6),
    ContractException(
        "C2", "token response fields", "exchangeJwtAssertion",
        published="TokenResponse {accessToken (required), refreshToken}",
        documented="{accessToken, tokenType: \"Bearer\", expiresIn: 3600}; the mock sends all four fields",
        reason="authentication and quickstart pages (reference §1.3, §5.1 C2)",
        treatment="extra token fields tokenType (string) and expiresIn (integer) are accepted and type-checked",
        apply=_c2),
    ContractException(
        "C4", "validation entry shape", "every operation answering validation_error",
        published="PartnerValidationError {attribute, code, message}",
        documented="{field, code, message, value}; the mock sends field and attribute (same path) plus value",
        reason="the errors page example against the published schema (reference §1.6, §5.1 C4, §5.2 #14)",
        treatment="validation entries carry field + attribute + value: field (string) and value (any) accepted",
        apply=_c4),
    ContractException(
        "D1", "401 invalid_token where none is declared", "exchangeJwtAssertion, getOauth2Info and every bearer "
        "operation without a 401",
        published="no 401 on the token exchange (201 and 422 only) nor on getOauth2Info (200 only)",
        documented="every assertion failure and every missing, malformed or expired bearer is 401 invalid_token",
        reason="authentication and errors pages (reference §1.3, §2.2, §5.2 #2)",
        treatment="a 401 envelope is accepted on the token exchange and on every bearer-secured operation",
        apply=_d1),
    ContractException(
        "D2", "404 on unknown contract documents", "the eight /v1/contracts/{version}... reads",
        published="200 (and 422) only",
        documented="an unknown version or name is 404 not_found, like every absent resource",
        reason="errors page not_found; mock decision for the undocumented contract pages (reference §2.3, §5.2 #45)",
        treatment="a 404 envelope is accepted on the contract reads",
        apply=_d2),
    ContractException(
        "D3", "/docs is an HTML page", "swagger",
        published="200 application/json with an empty schema",
        documented="the API documentation UI, an HTML page",
        reason="reference §2.1 (a real Swagger UI is HTML)",
        treatment="a text/html answer is accepted from GET /docs",
        apply=_d3),
    ContractException(
        "D4", "a bad investor row fails alone", "bulkCreateInvestors",
        published="InvestorCreateRow constrains each row; the description says the call always answers 200 with "
                  "a per-row result",
        documented="always 200: a row that fails validation comes back status failed with an error, the others "
                   "are still created",
        reason="concepts/investors and the operation's own description (reference §2.5, §5.1 C21)",
        treatment="negative_data_rejection accepts a 200 to a request bad only inside rows, provided every row the "
                  "schema refuses came back failed (the check is narrowed, not dropped)",
        apply=_no_document_change),
)


def apply_exceptions(document: Document) -> tuple[Document, list[AppliedException]]:
    """A copy of ``document`` with every documented exception written in, and each exception with its changes."""
    patched = copy.deepcopy(document)
    return patched, [AppliedException(exception, tuple(exception.apply(patched))) for exception in EXCEPTIONS]
