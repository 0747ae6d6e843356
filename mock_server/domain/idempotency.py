"""Idempotency records: scope (client_id, key), canonical body hash, 24 h on the simulated clock.

A first call is marked in flight, runs, and stores its 2xx answer in the same transaction as its effects; a repeat
with the same body replays that answer verbatim; a different body, or a repeat while the first still runs, is 409.
Error answers are not stored, so a corrected retry with the same key works. Expired records are purged as simulated
time passes (on every keyed write, and after every clock advance). Owner of the ``idempotency`` table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from mock_server.clock import Clock, format_instant
from mock_server.errors import Conflict, InvalidRequest
from mock_server.store import Store, dumps, loads

MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status: int
    content_type: str
    body: bytes
    ignored_fields: tuple[str, ...] = ()  # the unknown request fields the first call ignored (Zest-Mock-Warning)


def body_hash(parsed_body: Any) -> str:
    """SHA-256 of the body as compact, key-sorted UTF-8 JSON: whitespace and key order do not matter."""
    canonical = json.dumps(parsed_body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str | None, *, required: bool) -> str | None:
    if key is None:
        if required:
            raise InvalidRequest("Idempotency-Key header is required on this endpoint")
        return None
    key = key.strip()
    if not key:
        raise InvalidRequest("Idempotency-Key must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidRequest(f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters")
    return key


def begin(store: Store, clock: Clock, ttl_seconds: int, client_id: str, key: str, hashed: str) -> StoredAnswer | None:
    """The stored answer to replay, or None after marking this call in flight."""
    now = clock.now()
    purge_expired(store, clock)  # an indexed range delete: nothing to do costs one index probe
    row = store.one("SELECT * FROM idempotency WHERE client_id = ? AND key = ?", client_id, key)
    if row is not None and row["expires_at"] > format_instant(now):
        if row["body_hash"] != hashed:
            raise Conflict("Idempotency-Key was already used with a different request body")
        if row["state"] == "in_flight":
            raise Conflict("request with this Idempotency-Key is still in progress")
        return StoredAnswer(row["status"], row["content_type"], row["body"], tuple(loads(row["ignored_fields"]) or ()))
    store.run(
        "INSERT OR REPLACE INTO idempotency (client_id, key, body_hash, state, created_at, expires_at) "
        "VALUES (?, ?, ?, 'in_flight', ?, ?)",
        client_id, key, hashed, format_instant(now), format_instant(now + timedelta(seconds=ttl_seconds)),
    )
    return None


def finish(store: Store, client_id: str, key: str, answer: StoredAnswer, ignored_fields: Sequence[str] = ()) -> None:
    """Store the answer and the unknown fields the call ignored; call inside the transaction that made the effects."""
    store.run(
        "UPDATE idempotency SET state = 'done', status = ?, content_type = ?, body = ?, ignored_fields = ? "
        "WHERE client_id = ? AND key = ?",
        answer.status, answer.content_type, answer.body, dumps(list(ignored_fields)) if ignored_fields else None,
        client_id, key,
    )


def abandon(store: Store, client_id: str, key: str) -> None:
    """Forget an in-flight mark whose call failed, so a retry with the same key runs again."""
    store.run("DELETE FROM idempotency WHERE client_id = ? AND key = ? AND state = 'in_flight'", client_id, key)


def purge_expired(store: Store, clock: Clock) -> int:
    """Drop the records whose 24 h window has passed on the simulated clock; how many went."""
    return int(store.conn.execute("DELETE FROM idempotency WHERE expires_at <= ? AND state = 'done'",
                                  (format_instant(clock.now()),)).rowcount)


def clear_in_flight(store: Store) -> None:
    """After a restart nothing is in flight any more."""
    store.run("DELETE FROM idempotency WHERE state = 'in_flight'")
