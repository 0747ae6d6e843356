"""The request journal's tables (``journal``, ``journal_rows``): this module alone reads and writes them.

One row per partner API call, written after the answer went out (``http.journaling`` gathers it),
and for a bulk investor create one ``journal_rows`` row per investor row: how it was answered (status, person id,
error, the fault that failed it) and the hash of the row as sent. The tables keep the latest ``KEEP`` calls.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mock_server.store import Row, Store, equal_to

if TYPE_CHECKING:
    from mock_server.domain.investors import RowOutcome

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
    ignored_fields: str | None = None  # JSON list of the unknown request fields the route ignored


def record(store: Store, call: Call, rows: Sequence[RowOutcome] = ()) -> int:
    """Add one call and its investor rows; every ``_PRUNE_EVERY`` calls, drop what is older than the latest
    ``KEEP``."""
    with store.tx() if rows else contextlib.nullcontext():  # the call and its up to 500 rows: one commit
        seq = store.run(
            "INSERT INTO journal (at, wall_at, method, path, operation_id, client_id, idempotency_key, body_hash, "
            "status, duration_ms, fault, resource, ignored_fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            call.at, call.wall_at, call.method, call.path, call.operation_id, call.client_id, call.idempotency_key,
            call.body_hash, call.status, call.duration_ms, call.fault, call.resource, call.ignored_fields,
        )
        for row in rows:
            _record_row(store, seq, row)
    if seq % _PRUNE_EVERY == 0:
        store.run("DELETE FROM journal WHERE seq <= ?", seq - KEEP)
        store.run("DELETE FROM journal_rows WHERE seq <= ?", seq - KEEP)
    return seq


def _record_row(store: Store, seq: int, row: RowOutcome) -> None:
    result, error = row.result, row.result.error
    store.run(
        "INSERT INTO journal_rows (seq, idx, partner_investor_id, row_hash, status, person_id, error_code, retryable, "
        "field, fault) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        seq, row.index, result.partnerInvestorId, row.row_hash, result.status, result.zestPersonId,
        error.code if error else None, None if error is None else int(error.retryable), error.field if error else None,
        row.fault,
    )


def latest(store: Store, limit: int, client_id: str | None = None, operation_id: str | None = None) -> list[Row]:
    """The latest ``limit`` matching calls, oldest first."""
    where, args = equal_to({"client_id": client_id, "operation_id": operation_id})
    rows = store.all(f"SELECT * FROM journal {where} ORDER BY seq DESC LIMIT ?", *args, limit)
    return list(reversed(rows))


def rows_of(store: Store, calls: Sequence[Row]) -> dict[int, list[Row]]:
    """The investor rows of ``calls`` (journal rows, oldest first), by call seq, each in batch order."""
    if not calls:
        return {}
    found: dict[int, list[Row]] = {}
    for row in store.all("SELECT * FROM journal_rows WHERE seq BETWEEN ? AND ? ORDER BY seq, idx",
                         calls[0]["seq"], calls[-1]["seq"]):
        found.setdefault(row["seq"], []).append(row)
    return found


def count(store: Store) -> int:
    row = store.one("SELECT COUNT(*) AS n FROM journal")
    return int(row["n"]) if row else 0
