"""The request journal's table (``journal``): this module alone reads and writes it.

One row per partner API call, written after the answer went out (``control.journal``'s middleware gathers it);
the table keeps the latest ``KEEP`` rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from mock_server.store import Row, Store, equal_to

KEEP = 10_000
_PRUNE_EVERY = 500


@dataclass(frozen=True, slots=True)
class Call:
    at: str
    wall_at: float
    method: str
    path: str
    operation_id: str | None
    client_id: str | None
    idempotency_key: str | None
    body_hash: str | None
    status: int
    duration_ms: float
    fault: str | None
    resource: str | None


def record(store: Store, call: Call) -> int:
    """Add one call; every ``_PRUNE_EVERY`` calls, drop what is older than the latest ``KEEP``."""
    seq = store.run(
        "INSERT INTO journal (at, wall_at, method, path, operation_id, client_id, idempotency_key, body_hash, "
        "status, duration_ms, fault, resource) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        call.at, call.wall_at, call.method, call.path, call.operation_id, call.client_id, call.idempotency_key,
        call.body_hash, call.status, call.duration_ms, call.fault, call.resource,
    )
    if seq % _PRUNE_EVERY == 0:
        store.run("DELETE FROM journal WHERE seq <= ?", seq - KEEP)
    return seq


def latest(store: Store, limit: int, client_id: str | None = None, operation_id: str | None = None) -> list[Row]:
    """The latest ``limit`` matching calls, oldest first."""
    where, args = equal_to({"client_id": client_id, "operation_id": operation_id})
    rows = store.all(f"SELECT * FROM journal {where} ORDER BY seq DESC LIMIT ?", *args, limit)
    return list(reversed(rows))


def count(store: Store) -> int:
    row = store.one("SELECT COUNT(*) AS n FROM journal")
    return int(row["n"]) if row else 0
