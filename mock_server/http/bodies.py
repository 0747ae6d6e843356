"""Reading request bodies: JSON with a size cap and a content-type check, closed models, urlencoded forms.

Malformed input becomes a 400 in the Zest envelope (``invalid_request`` for syntax, ``validation_error`` with one
entry per failing field for schema), never a framework 422 and never a 500.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from mock_server.errors import FieldError, InvalidRequest, PayloadTooLarge
from mock_server.store import dumps

MAX_DEPTH = 32  # far deeper than any Zest body; keeps every later walk (hashing, errors, storage) shallow


async def read_bytes(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it passes ``limit`` (declared or streamed)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is over {limit} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body is over {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect as exc:
        raise InvalidRequest("client disconnected before the body was complete") from exc
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> Any:
    """The parsed JSON body of a JSON endpoint: strict RFC 8259 JSON, UTF-8, nested at most ``MAX_DEPTH`` deep."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise InvalidRequest(f"Content-Type must be application/json, not {media_type or 'absent'!r}")
    raw = await read_bytes(request, limit)
    try:
        data = json.loads(raw, parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise InvalidRequest("request body is not UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:
        raise InvalidRequest(f"malformed JSON: nested deeper than {MAX_DEPTH} levels") from exc
    except ValueError as exc:  # NaN/Infinity, or an integer too long to convert
        raise InvalidRequest(f"malformed JSON: {exc}") from exc
    if not _plain_for_sure(raw):
        _check_plain(data)
    return data


def _plain_for_sure(raw: bytes) -> bool:
    """True when the text alone rules out what ``_check_plain`` looks for (the common case, at C speed): ASCII
    without escapes holds no surrogate, and fewer brackets than ``MAX_DEPTH`` cannot nest that deep."""
    return raw.isascii() and b"\\u" not in raw and raw.count(b"[") + raw.count(b"{") < MAX_DEPTH


def int_query(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter in ``low..high`` (ASCII digits only), or 400 ``invalid_request``."""
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise InvalidRequest(f"{name} must be an integer from {low} to {high}",
                             field_errors=[FieldError(name, "format", f"{name} must be {low}..{high}", raw[:50])])
    return int(raw)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_plain(data: Any) -> None:
    """Refuse what parses but cannot be stored or echoed: deep nesting, lone surrogates (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidRequest(f"malformed JSON: nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            stack.extend((key, depth) for key in node)
            stack.extend((value, depth + 1) for value in node.values())
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node)
        elif isinstance(node, str) and not _utf8_safe(node):
            raise InvalidRequest("malformed JSON: a string holds a lone UTF-16 surrogate")


def _utf8_safe(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


async def read_form(request: Request, limit: int) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as single values (the first of repeats)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise InvalidRequest("Content-Type must be application/x-www-form-urlencoded")
    raw = await read_bytes(request, limit)
    try:
        parsed = parse_qs(raw.decode(), keep_blank_values=True, strict_parsing=False, max_num_fields=50)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest("malformed form body") from exc
    return {key: values[0] for key, values in parsed.items()}


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(dumps(payload).encode(), status_code=status, media_type="application/json")
