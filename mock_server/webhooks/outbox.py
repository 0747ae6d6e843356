"""The outbox: the ``events``, ``deliveries`` and ``attempts`` tables. This module alone reads and writes them.

An event is stored (with its exact wire bytes) in the transaction of the change that caused it; each delivery is
one chain of attempts of an event to its partner's endpoint (``original``, ``duplicate`` from chaos, ``redeliver``
from the control plane); each attempt is one row, written in the same transaction that schedules the next one.
Delivery statuses: ``pending`` (a ``deliver`` job exists), ``awaiting_endpoint`` (parked until the partner has an
endpoint), ``held`` (inside a reorder window), ``delivered``, ``dead``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mock_server.store import Row, Store, equal_to


@dataclass(frozen=True, slots=True)
class Attempt:
    delivery_id: str
    event_id: str
    client_id: str
    attempt: int  # 0 for a tamper copy beside the real attempt
    at: str
    url: str | None
    status_code: int | None
    error: str | None
    duration_ms: float
    outcome: str  # delivered | failed | tamper_rejected | tamper_accepted
    next_attempt_at: str | None
    fault: str | None


def add_event(store: Store, event_id: str, client_id: str, event_type: str, occurred_at: str, body: bytes) -> None:
    store.run("INSERT INTO events (event_id, client_id, event_type, occurred_at, body) VALUES (?, ?, ?, ?, ?)",
              event_id, client_id, event_type, occurred_at, body)


def add_delivery(store: Store, delivery_id: str, event_id: str, client_id: str, status: str, due: str,
                 kind: str) -> None:
    store.run(
        "INSERT INTO deliveries (delivery_id, event_id, client_id, status, next_attempt_at, created_at, kind) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)", delivery_id, event_id, client_id, status, due, due, kind,
    )


def delivery(store: Store, delivery_id: str) -> Row | None:
    """A delivery with its event's body and type."""
    return store.one("SELECT d.*, e.body, e.event_type FROM deliveries d JOIN events e ON e.event_id = d.event_id "
                     "WHERE d.delivery_id = ?", delivery_id)


def delivery_taken(store: Store, delivery_id: str) -> bool:
    """Whether a delivery has this id (a fresh id is drawn again if so)."""
    return store.one("SELECT 1 FROM deliveries WHERE delivery_id = ?", delivery_id) is not None


def has_kind(store: Store, event_id: str, kind: str) -> bool:
    """Whether the event already has a delivery of ``kind`` (``duplicate``, say)."""
    return store.one("SELECT 1 FROM deliveries WHERE event_id = ? AND kind = ? LIMIT 1", event_id, kind) is not None


def set_status(store: Store, delivery_id: str, status: str, next_attempt_at: str | None = None) -> None:
    if next_attempt_at is None:
        store.run("UPDATE deliveries SET status = ? WHERE delivery_id = ?", status, delivery_id)
    else:
        store.run("UPDATE deliveries SET status = ?, next_attempt_at = ? WHERE delivery_id = ?",
                  status, next_attempt_at, delivery_id)


def record_attempt(store: Store, attempt: Attempt, status: str | None = None) -> None:
    """One attempt; with ``status``, the delivery's new status, attempt count and next attempt time as well."""
    store.run(
        "INSERT INTO attempts (delivery_id, event_id, client_id, attempt, at, url, status_code, error, duration_ms, "
        "outcome, next_attempt_at, fault) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        attempt.delivery_id, attempt.event_id, attempt.client_id, attempt.attempt, attempt.at, attempt.url,
        attempt.status_code, attempt.error, attempt.duration_ms, attempt.outcome, attempt.next_attempt_at,
        attempt.fault,
    )
    if status is not None:
        store.run("UPDATE deliveries SET status = ?, attempts = ?, next_attempt_at = ? WHERE delivery_id = ?",
                  status, attempt.attempt, attempt.next_attempt_at, attempt.delivery_id)


def with_status(store: Store, status: str, client_id: str | None = None) -> list[Row]:
    """Deliveries in ``status`` (of one partner, if given), oldest first."""
    where, args = equal_to({"status": status, "client_id": client_id})
    return store.all(f"SELECT * FROM deliveries {where} ORDER BY created_at, delivery_id", *args)


def event(store: Store, event_id: str) -> Row | None:
    return store.one("SELECT * FROM events WHERE event_id = ?", event_id)


def event_taken(store: Store, event_id: str) -> bool:
    """Whether an event has this id (a fresh id is drawn again if so)."""
    return store.one("SELECT 1 FROM events WHERE event_id = ?", event_id) is not None


def events(store: Store, client_id: str | None = None, event_type: str | None = None) -> list[Row]:
    where, args = equal_to({"client_id": client_id, "event_type": event_type})
    return store.all(f"SELECT client_id, body FROM events {where} ORDER BY seq", *args)


def attempts(store: Store, client_id: str | None = None, event_id: str | None = None,
             delivery_id: str | None = None) -> list[Row]:
    where, args = equal_to({"client_id": client_id, "event_id": event_id, "delivery_id": delivery_id})
    return store.all(f"SELECT * FROM attempts {where} ORDER BY seq", *args)


def event_types(store: Store) -> list[Row]:
    """(client_id, event_type) of every event, for the state summary."""
    return store.all("SELECT client_id, event_type FROM events")


def delivery_statuses(store: Store) -> list[Row]:
    """(client_id, status) of every delivery, for the state summary."""
    return store.all("SELECT client_id, status FROM deliveries")
