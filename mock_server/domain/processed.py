"""Reports of webhook events a partner's receiver processed (the ``processed`` table: this module alone reads and
writes it); ``events_processed_once`` judges them."""

from __future__ import annotations

from mock_server.store import Row, Store, equal_to


def report(store: Store, client_id: str, event_ids: list[str], at: str, wall_at: float) -> None:
    with store.tx():
        for event_id in event_ids:
            store.run("INSERT INTO processed (client_id, event_id, wall_at, at) VALUES (?, ?, ?, ?)",
                      client_id, event_id, wall_at, at)


def reports(store: Store, client_id: str | None = None) -> list[Row]:
    where, args = equal_to({"client_id": client_id})
    return store.all(f"SELECT * FROM processed {where} ORDER BY seq", *args)
