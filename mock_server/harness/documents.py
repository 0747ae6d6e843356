"""What an OpenAPI document says about its operations that the harness acts on, read from the document itself
(the one a mock serves at ``/openapi.json``, or a published one), never from the server's code.

- ``keyed_writes``: the operations that take an ``Idempotency-Key`` header (the scenario runner judges how their
  failed calls are retried);
- ``safe_to_send``: what may be sent to a server whose data we may not change: reads, calls made without
  credentials (they cannot touch a partner's data) and creates keyed by an Idempotency-Key (a retry cannot
  duplicate them); cancels and uploads change existing resources and are not in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

IDEMPOTENCY_KEY = "idempotency-key"
READS = ("GET", "HEAD")


@dataclass(frozen=True, slots=True)
class DocumentedOperation:
    method: str
    path: str
    operation_id: str
    spec: Mapping[str, Any]

    @property
    def secured(self) -> bool:
        return bool(self.spec.get("security"))

    @property
    def path_parameters(self) -> list[str]:
        return [p["name"] for p in self.spec.get("parameters", []) if p.get("in") == "path"]

    def idempotency(self) -> str:
        """required, optional or none: how the operation takes an Idempotency-Key header."""
        key = next((p for p in self.spec.get("parameters", [])
                    if p.get("in") == "header" and str(p.get("name", "")).lower() == IDEMPOTENCY_KEY), None)
        if key is None:
            return "none"
        return "required" if key.get("required") else "optional"


def operations(document: Mapping[str, Any]) -> list[DocumentedOperation]:
    """Every operation of the document, in document order (operation-level ``security``, else the document's)."""
    default_security = document.get("security")
    found = []
    for path, methods in document.get("paths", {}).items():
        for method, spec in methods.items():
            if isinstance(spec, dict) and "operationId" in spec:
                if "security" not in spec and default_security is not None:
                    spec = {**spec, "security": default_security}
                found.append(DocumentedOperation(method.upper(), path, str(spec["operationId"]), spec))
    return found


def keyed_writes(document: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(op.operation_id for op in operations(document) if op.idempotency() != "none")


def safe_to_send(document: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(op.operation_id for op in operations(document)
                     if op.method in READS or not op.secured or op.idempotency() != "none")
