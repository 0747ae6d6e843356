"""The operations of the partner-facing routes (``http/``), in the order they are served and documented.

The control plane's own operations (``control/``) come on top of these in ``app.all_operations``.
"""

from __future__ import annotations

from mock_server.http import auth, contracts, files, investors, spv_requests, system, uploads
from mock_server.http.operations import Operation

OPERATIONS: tuple[Operation, ...] = (
    *system.OPERATIONS, *auth.OPERATIONS, *contracts.OPERATIONS, *spv_requests.OPERATIONS,
    *investors.OPERATIONS, *uploads.OPERATIONS, *files.OPERATIONS,
)


def partner_operation_ids() -> list[str]:
    """The operationIds of the partner API (``/openapi.json``)."""
    return [op.operation_id for op in OPERATIONS if op.plane == "partner"]
