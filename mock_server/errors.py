"""The one error tree of the mock and the one renderer of the Zest error envelope.

Every non-2xx answer, whatever raised it, leaves as
``{"code", "detail", "errorId", "validationErrors"?}``::

    ZestError                      (status, code)
    ├── InvalidRequest             400 invalid_request
    ├── ValidationFailed           400 validation_error   (carries FieldError entries)
    ├── InvalidToken               401 invalid_token      (WWW-Authenticate: Bearer)
    ├── Forbidden                  403 forbidden
    ├── NotFound                   404 not_found
    ├── MethodNotAllowed           405 invalid_request    (Allow header)
    ├── Conflict                   409 conflict
    ├── PayloadTooLarge            413 payload_too_large
    ├── UnsupportedMediaType       415 unsupported_media_type
    ├── InternalError              500 internal_error
    └── ServiceUnavailable         503 service_unavailable
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.responses import Response


@dataclass(frozen=True, slots=True)
class FieldError:
    """One failing attribute: path (``attributes.shareClasses[0].carryPercent``), code, message, offending value."""

    path: str
    code: str
    message: str
    value: Any = None

    def to_wire(self) -> dict[str, Any]:
        # Both documented shapes at once: docs use `field`, the OpenAPI uses `attribute`.
        entry: dict[str, Any] = {"field": self.path, "attribute": self.path, "code": self.code, "message": self.message}
        if self.value is not None:
            entry["value"] = self.value
        return entry


class ZestError(Exception):
    """An answer in the Zest error envelope."""

    status: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        detail: str,
        *,
        field_errors: list[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field_errors = field_errors or []
        self.headers = dict(headers or {})
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class InvalidRequest(ZestError):
    status, code = 400, "invalid_request"


class ValidationFailed(ZestError):
    status, code = 400, "validation_error"

    def __init__(self, field_errors: list[FieldError], detail: str | None = None) -> None:
        n = len(field_errors)
        super().__init__(detail or f"{n} attribute{'s' if n != 1 else ''} failed validation", field_errors=field_errors)


class InvalidToken(ZestError):
    status, code = 401, "invalid_token"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class Forbidden(ZestError):
    status, code = 403, "forbidden"


class NotFound(ZestError):
    status, code = 404, "not_found"


class MethodNotAllowed(ZestError):
    status, code = 405, "invalid_request"

    def __init__(self, method: str, path: str, allowed: list[str]) -> None:
        super().__init__(f"method {method} is not allowed on {path}", headers={"Allow": ", ".join(allowed)})


class Conflict(ZestError):
    status, code = 409, "conflict"


class PayloadTooLarge(ZestError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ZestError):
    status, code = 415, "unsupported_media_type"


class InternalError(ZestError):
    status, code = 500, "internal_error"


class ServiceUnavailable(ZestError):
    status, code = 503, "service_unavailable"


MAX_FIELD_ERRORS = 100


def envelope(exc: ZestError, error_id: str) -> dict[str, Any]:
    """The wire body of an error; at most ``MAX_FIELD_ERRORS`` entries (the detail says how many there were)."""
    body: dict[str, Any] = {"code": exc.code, "detail": exc.detail, "errorId": error_id}
    if exc.field_errors:
        body["validationErrors"] = [e.to_wire() for e in exc.field_errors[:MAX_FIELD_ERRORS]]
        if len(exc.field_errors) > MAX_FIELD_ERRORS:
            body["detail"] += f" (the first {MAX_FIELD_ERRORS} of {len(exc.field_errors)} are listed)"
    return body


def error_response(exc: ZestError, new_error_id: Callable[[], str]) -> Response:
    """Render ``exc`` as a JSON response with its status and headers."""
    from starlette.responses import Response  # not at import: the domain raises errors, only the app renders them

    body = json.dumps(envelope(exc, new_error_id()), separators=(",", ":")).encode()
    return Response(body, status_code=exc.status, headers=exc.headers, media_type="application/json")
