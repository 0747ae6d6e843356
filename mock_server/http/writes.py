"""Running a transactional operation's effect: it and its stored idempotent answer commit in one transaction, or
neither does. Called once, by the endpoint wrapper (``operations._PathEndpoint.handle``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mock_server.domain import idempotency
from mock_server.domain.idempotency import StoredAnswer
from mock_server.http import unknown_fields
from mock_server.runtime import Runtime
from mock_server.store import dumps

Run = Callable[[], tuple[int, object]]


@dataclass(frozen=True, slots=True)
class Effect:
    """What a transactional handler returns: ``run`` validates and acts, returning (status, JSON payload);
    ``body`` is the parsed request body an Idempotency-Key is bound to (its canonical hash); ``on_replay`` gets
    the stored answer's body when it is replayed instead of running; ``close`` is called once it is over."""

    run: Run
    body: Any = None
    on_replay: Callable[[bytes], None] | None = None
    close: Callable[[], None] | None = None  # releases what ``run`` needs open (an upload's spool), run or not


def commit(rt: Runtime, request: Request, effect: Effect, mode: str, client_id: str | None) -> Response:
    """``_run``, then ``effect.close`` whatever happened."""
    try:
        return _run(rt, request, effect, mode, client_id)
    finally:
        if effect.close is not None:
            effect.close()


def _run(rt: Runtime, request: Request, effect: Effect, mode: str, client_id: str | None) -> Response:
    """Replay, refuse (409) or run ``effect`` under the request's Idempotency-Key (``mode``: required, optional
    or none; ``client_id`` scopes the key), then answer.

    The key is checked before the body is judged; whatever ``effect.run`` raises leaves neither effects nor a
    stored answer behind.
    """
    if mode == "none":
        with rt.store.tx():
            return _respond(_answer(effect))
    assert client_id is not None
    key = idempotency.check_key(request.headers.get("idempotency-key"), required=mode == "required")
    request.scope.setdefault("state", {})["body_hash"] = hashed = idempotency.body_hash(effect.body)
    if key is None:
        with rt.store.tx():
            return _respond(_answer(effect))
    replay = idempotency.begin(rt.store, rt.clock, rt.settings.idempotency_ttl_seconds, client_id, key, hashed)
    state = request.scope["state"]
    if replay is not None:
        state["replayed"] = True
        if replay.ignored_fields:
            state[unknown_fields.STATE_KEY] = list(replay.ignored_fields)
        if effect.on_replay is not None:
            effect.on_replay(replay.body)
        return _respond(replay)
    try:
        with rt.store.tx():
            answer = _answer(effect)
            idempotency.finish(rt.store, client_id, key, answer, state.get(unknown_fields.STATE_KEY) or ())
    except BaseException:
        idempotency.abandon(rt.store, client_id, key)
        raise
    return _respond(answer)


def _answer(effect: Effect) -> StoredAnswer:
    status, payload = effect.run()
    return StoredAnswer(status, "application/json", dumps(payload).encode())


def _respond(answer: StoredAnswer) -> Response:
    return Response(answer.body, status_code=answer.status, media_type=answer.content_type)
