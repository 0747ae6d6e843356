"""Shared pieces of the operation declarations: the error answers."""

from __future__ import annotations

from mock_server.http.operations import Answer
from mock_server.models import PartnerErrorResponse

_MEANINGS = {
    400: "Invalid request or validation error",
    401: "Missing, malformed or expired bearer token",
    403: "Partner application not provisioned for the partner API",
    404: "Resource absent or not visible to the caller",
    409: "Conflict: Idempotency-Key reuse with another body, terminal status, or strict order",
    413: "File too large (over 10 MiB)",
    415: "Unsupported media type (PDF, JPEG, PNG, WEBP only)",
}


def errors(*statuses: int) -> dict[int, Answer]:
    return {s: Answer(_MEANINGS[s], PartnerErrorResponse) for s in statuses}
