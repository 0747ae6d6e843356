"""The operations of the partner-facing routes (``http/``), in the order they are served and documented.

The system routes (root, health check, documents) are served from the start; the partner API (``api_operations``)
is imported with its first request, with its models. The control plane's own operations
(``control/``) come on top of these in ``app.all_operations``.
"""

from __future__ import annotations

from mock_server.http import system
from mock_server.http.operations import Operation

SYSTEM: tuple[Operation, ...] = tuple(system.OPERATIONS)


def api_operations() -> list[Operation]:
    """The partner API's operations: under ``/v1/``, and the signed file URLs under ``/_mock/files``."""
    from mock_server.http import auth, contracts, files, investors, spv_requests, uploads

    return [*auth.OPERATIONS, *contracts.OPERATIONS, *spv_requests.OPERATIONS, *investors.OPERATIONS,
            *uploads.OPERATIONS, *files.OPERATIONS]


def operations() -> list[Operation]:
    """Every partner-facing operation, system ones first."""
    return [*SYSTEM, *api_operations()]


def partner_operation_ids() -> list[str]:
    """The operationIds of the partner API (``/openapi.json``)."""
    return [op.operation_id for op in operations() if op.plane == "partner"]
