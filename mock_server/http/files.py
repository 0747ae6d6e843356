"""Serving stored uploads behind the signed URLs handed out in upload responses and webhooks.

The URL is the capability: no bearer token, but a valid, unexpired (simulated clock) signature, else 403.
"""

from __future__ import annotations

from starlette.responses import Response, StreamingResponse

from mock_server.domain import uploads
from mock_server.http.operations import Answer, Call, Operation, Param
from mock_server.models import PartnerErrorResponse


async def get_stored_file(call: Call) -> Response:
    query = call.request.query_params
    stored = uploads.verify_file_url(
        call.rt, call.request.path_params["sha256"], query.get("expires"), query.get("sig"))
    headers = {"Cache-Control": "private, no-store", "Content-Disposition": "inline",
               "X-Content-Type-Options": "nosniff", "Content-Length": str(stored.size)}
    return StreamingResponse(uploads.file_chunks(call.rt.store, stored), media_type=stored.content_type,
                             headers=headers)


OPERATIONS: list[Operation] = [
    Operation(
        method="GET", path="/_mock/files/{sha256}", operation_id="getStoredFile", tag="Mock files",
        summary="Download an uploaded file through its signed URL",
        description="Serves the bytes of a stored form or receipt with their content type, as long as `expires` "
                    "(unix seconds, simulated clock) has not passed and `sig` is the HMAC the mock issued.",
        handler=get_stored_file, plane="hidden",
        params=(
            Param("sha256", "path", {"type": "string", "pattern": "^[0-9a-f]{64}$"}, required=True),
            Param("expires", "query", {"type": "integer"}, required=True),
            Param("sig", "query", {"type": "string"}, required=True),
        ),
        answers={
            200: Answer("The stored bytes", media_type="application/octet-stream"),
            403: Answer("Signature missing, wrong or expired", PartnerErrorResponse),
            404: Answer("No such file", PartnerErrorResponse),
        },
    ),
]
