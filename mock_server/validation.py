"""Turning pydantic validation failures into Zest field errors (paths like ``subscriptions[1].lumpSum.value``).

Unknown fields: the closed models refuse them (``unknown_attribute``); a caller that passes an ``ignored`` list
gets them left out instead, as Zest's own (FastAPI) models do, with their paths appended to that list.
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from mock_server.errors import FieldError, ValidationFailed
from mock_server.store import dumps

M = TypeVar("M", bound=BaseModel)

_CODES = {
    "missing": "required", "extra_forbidden": "unknown_attribute", "string_too_long": "max_length",
    "too_long": "max_value", "too_short": "min_value", "string_too_short": "min_value",
    "string_pattern_mismatch": "pattern", "literal_error": "enum", "enum": "enum",
    "greater_than_equal": "min_value", "greater_than": "min_value", "less_than_equal": "max_value",
    "less_than": "max_value",
}


def parse_model(model: type[M], data: Any, prefix: str = "", *, ignored: list[str] | None = None) -> M:
    """Validate ``data`` against a closed model, or raise 400 ``validation_error`` listing every failing field.

    With ``ignored``, unknown fields (at any depth of the model, not inside free-form dicts) are dropped and their
    paths appended to it rather than refused.
    """
    if not isinstance(data, dict):
        raise ValidationFailed([FieldError(prefix or "body", "type", "expected a JSON object", shorten(data))])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        unknown = [err["loc"] for err in exc.errors(include_url=False) if err["type"] == "extra_forbidden"]
        if ignored is None or not unknown:
            raise ValidationFailed(field_errors(exc, prefix)) from exc
    ignored.extend(_path(prefix, loc) for loc in unknown)
    try:
        return model.model_validate(_without(data, unknown))
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc, prefix)) from exc


def _without(data: dict[str, Any], locations: list[tuple[int | str, ...]]) -> dict[str, Any]:
    """A copy of ``data`` without the keys at ``locations`` (pydantic error locations)."""
    pruned = copy.deepcopy(data)
    for loc in locations:
        node: Any = pruned
        for part in loc[:-1]:
            node = node[part] if isinstance(node, dict | list) else None
        if isinstance(node, dict):
            node.pop(loc[-1], None)
    return pruned


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    return [
        FieldError(_path(prefix, err["loc"]), _code(err["type"]), err["msg"],
                   None if err["type"] == "missing" else shorten(err.get("input")))
        for err in exc.errors(include_url=False)
    ]


def shorten(value: Any) -> Any:
    """The offending value, shortened so an error never echoes a huge input."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    text = value if isinstance(value, str) else dumps(value)
    return text[:200] + "…" if len(text) > 200 else text


def _path(prefix: str, loc: tuple[int | str, ...]) -> str:
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def _code(pydantic_type: str) -> str:
    if pydantic_type.endswith("_type"):
        return "type"
    return _CODES.get(pydantic_type, "format")
