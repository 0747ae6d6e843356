"""Unknown request fields on the partner API: ignored and reported, or refused under ``--strict-fields``.

Zest's models ignore unknown top-level fields, unknown investor-row fields and unknown multipart parts (unknown
attributes inside an SPV request's ``attributes`` are refused by the template, not here). A route asks
``ignored_fields(call)`` for the list to append the paths it dropped to (None under ``strict_fields``: refuse
them); ``WarningHeaderMiddleware`` names them in a ``Zest-Mock-Warning`` response header, and the journal records
them from the same ``scope["state"]["ignored_fields"]``. An idempotent replay answers with the list its first call
stored (the same body ignores the same fields).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:  # operations -> writes -> this module: only the annotation needs Call
    from mock_server.http.operations import Call

HEADER = "Zest-Mock-Warning"
STATE_KEY = "ignored_fields"
MAX_NAMED = 20  # a header names at most this many; the journal keeps them all


def ignored_fields(call: Call) -> list[str] | None:
    """Where the route lists the unknown fields it ignored; None when the mock refuses them (``strict_fields``)."""
    if call.rt.settings.strict_fields:
        return None
    ignored: list[str] = call.request.scope.setdefault("state", {}).setdefault(STATE_KEY, [])
    return ignored


def warning(ignored: list[str]) -> str:
    """The header value: every ignored field as a JSON string (ASCII, so any name survives a header)."""
    names = ", ".join(json.dumps(name) for name in ignored[:MAX_NAMED])
    more = f" and {len(ignored) - MAX_NAMED} more" if len(ignored) > MAX_NAMED else ""
    return f"ignored unknown fields: {names}{more} (--strict-fields refuses them)"


class WarningHeaderMiddleware:
    """Adds ``Zest-Mock-Warning`` to a response whose route ignored unknown fields."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_warning(message: Message) -> None:
            ignored = state.get(STATE_KEY)
            if message["type"] == "http.response.start" and ignored:
                headers = [*message.get("headers", []), (HEADER.lower().encode(), warning(ignored).encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_warning)
