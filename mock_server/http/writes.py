"""Running a write: its effects and its stored idempotent answer commit in one transaction, or neither does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import Response

from mock_server.domain import idempotency
from mock_server.domain.idempotency import StoredAnswer
from mock_server.http.operations import Call
from mock_server.store import dumps

Effect = Callable[[], tuple[int, object]]


def run_write(call: Call, parsed_body: Any, effect: Effect, *, key_required: bool) -> Response:
    """Replay, refuse (409) or run ``effect`` under the call's Idempotency-Key, if it has one.

    The key is checked before the body is judged; ``effect`` validates and acts, and whatever it raises leaves
    neither effects nor a stored answer behind.
    """
    rt, client_id = call.rt, call.partner.client_id
    key = idempotency.check_key(call.request.headers.get("idempotency-key"), required=key_required)
    call.request.scope.setdefault("state", {})["body_hash"] = hashed = idempotency.body_hash(parsed_body)
    if key is None:
        with rt.store.tx():
            return _respond(_answer(effect))
    replay = idempotency.begin(rt.store, rt.clock, rt.settings.idempotency_ttl_seconds, client_id, key, hashed)
    if replay is not None:
        call.request.scope["state"]["replayed"] = True
        return _respond(replay)
    try:
        with rt.store.tx():
            answer = _answer(effect)
            idempotency.finish(rt.store, client_id, key, answer)
    except BaseException:
        idempotency.abandon(rt.store, client_id, key)
        raise
    return _respond(answer)


def _answer(effect: Effect) -> StoredAnswer:
    status, payload = effect()
    return StoredAnswer(status, "application/json", dumps(payload).encode())


def _respond(answer: StoredAnswer) -> Response:
    return Response(answer.body, status_code=answer.status, media_type=answer.content_type)
