"""SQLite state of one mock: the schema, the connection, its transactions, and the ``meta`` table.

In memory unless a state file is given; then WAL on disk, so a restart resumes every resource, idempotency record,
stored event, pending delivery and scheduled job. This module defines the tables; each one is read and written by
one owning module, and nobody else writes SQL for it:

| table | owner |
|---|---|
| meta | ``store`` (``get_meta``/``set_meta``/``secret``) |
| partners (with webhook endpoint and chaos) | ``domain.partners`` |
| spv_requests, spvs | ``domain.spv_requests`` |
| investors | ``domain.investors`` |
| subscriptions | ``domain.subscriptions`` |
| files | ``domain.uploads`` |
| idempotency | ``domain.idempotency`` |
| events, deliveries, attempts (the outbox) | ``webhooks.outbox`` |
| jobs | ``scheduler`` |
| journal, journal_rows | ``domain.journal`` |
| processed | ``domain.processed`` |
| faults | ``domain.faults`` |
| used_assertions (jtis already exchanged) | ``domain.assertion_replay`` (called by ``domain.auth``) |

Reset (``wipe``) empties tables wholesale; that is the schema's business, not a query on anyone's rows.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS partners (
    client_id TEXT PRIMARY KEY, public_key_pem TEXT NOT NULL, tenant_slug TEXT NOT NULL,
    provisioned INTEGER NOT NULL DEFAULT 1, issuer TEXT, webhook_url TEXT, webhook_secret TEXT NOT NULL,
    chaos TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS spv_requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, slug TEXT UNIQUE NOT NULL, client_id TEXT NOT NULL,
    status TEXT NOT NULL, template_id TEXT NOT NULL, template_version TEXT NOT NULL, attributes TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, approved_at TEXT, rejected_at TEXT,
    rejection_reason TEXT, cancelled_at TEXT, materialised_refs TEXT, fees_and_carry TEXT);
CREATE INDEX IF NOT EXISTS spv_requests_client ON spv_requests (client_id, status);
CREATE TABLE IF NOT EXISTS spvs (
    vehicle_slug TEXT PRIMARY KEY, client_id TEXT NOT NULL, spv_request_slug TEXT NOT NULL,
    currency TEXT NOT NULL, share_classes TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS investors (
    person_id TEXT PRIMARY KEY, client_id TEXT NOT NULL, partner_investor_id TEXT NOT NULL, email TEXT NOT NULL,
    first_name TEXT NOT NULL, last_name TEXT NOT NULL, date_of_birth TEXT NOT NULL, country_of_residence TEXT,
    created_at TEXT NOT NULL, UNIQUE (client_id, partner_investor_id));
CREATE TABLE IF NOT EXISTS subscriptions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, slug TEXT UNIQUE NOT NULL, client_id TEXT NOT NULL,
    spv_slug TEXT NOT NULL, person_id TEXT NOT NULL, status TEXT NOT NULL, lump_sum TEXT NOT NULL,
    share_class_slug TEXT NOT NULL, partner_subscription_id TEXT, created_at TEXT NOT NULL,
    form_sha256 TEXT, form_uploaded_at TEXT, funding_sha256 TEXT, funding_uploaded_at TEXT,
    funding_amount TEXT, funding_currency TEXT, wire_reference TEXT,
    completed_at TEXT, completion_emitted INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS subscriptions_holder ON subscriptions (spv_slug, person_id);
CREATE TABLE IF NOT EXISTS files (
    sha256 TEXT PRIMARY KEY, content_type TEXT NOT NULL, size INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency (
    client_id TEXT NOT NULL, key TEXT NOT NULL, body_hash TEXT NOT NULL, state TEXT NOT NULL,
    status INTEGER, content_type TEXT, body BLOB, created_at TEXT NOT NULL, expires_at TEXT NOT NULL,
    ignored_fields TEXT, PRIMARY KEY (client_id, key));
CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency (expires_at);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE NOT NULL, client_id TEXT NOT NULL,
    event_type TEXT NOT NULL, occurred_at TEXT NOT NULL, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS events_client ON events (client_id, seq);
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id TEXT PRIMARY KEY, event_id TEXT NOT NULL, client_id TEXT NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at TEXT, created_at TEXT NOT NULL, kind TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS deliveries_status ON deliveries (status, client_id);
CREATE INDEX IF NOT EXISTS deliveries_event ON deliveries (event_id);
CREATE TABLE IF NOT EXISTS attempts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, delivery_id TEXT NOT NULL, event_id TEXT NOT NULL,
    client_id TEXT NOT NULL, attempt INTEGER NOT NULL, at TEXT NOT NULL, url TEXT, status_code INTEGER,
    error TEXT, duration_ms REAL NOT NULL, outcome TEXT NOT NULL, next_attempt_at TEXT, fault TEXT);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, due_at TEXT NOT NULL, kind TEXT NOT NULL, lane TEXT NOT NULL DEFAULT '',
    key TEXT NOT NULL DEFAULT '', payload TEXT NOT NULL, claimed INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS jobs_lane_due ON jobs (lane, claimed, due_at, id);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs (kind, key);
CREATE TABLE IF NOT EXISTS faults (
    id INTEGER PRIMARY KEY AUTOINCREMENT, rule TEXT NOT NULL, fired INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, wall_at REAL, method TEXT NOT NULL, path TEXT NOT NULL,
    operation_id TEXT, client_id TEXT, idempotency_key TEXT, body_hash TEXT, status INTEGER NOT NULL,
    duration_ms REAL NOT NULL, fault TEXT, resource TEXT, ignored_fields TEXT);
CREATE TABLE IF NOT EXISTS journal_rows (
    seq INTEGER NOT NULL, idx INTEGER NOT NULL, partner_investor_id TEXT NOT NULL, row_hash TEXT NOT NULL,
    status TEXT NOT NULL, person_id TEXT, error_code TEXT, retryable INTEGER, field TEXT, fault TEXT,
    PRIMARY KEY (seq, idx));
CREATE TABLE IF NOT EXISTS used_assertions (
    client_id TEXT NOT NULL, jti TEXT NOT NULL, exp REAL NOT NULL, PRIMARY KEY (client_id, jti));
CREATE TABLE IF NOT EXISTS processed (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL, event_id TEXT NOT NULL, wall_at REAL NOT NULL,
    at TEXT NOT NULL);
"""

Row = dict[str, Any]


class Store:
    """One SQLite connection, owned by the app's lifespan (or a test)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.conn = sqlite3.connect(
            str(path) if path else ":memory:", isolation_level=None, check_same_thread=False
        )
        self.conn.row_factory = _dict_row
        if path:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=5000")
        self._migrate()
        self.conn.executescript(SCHEMA)
        self._depth = 0
        self._job_listeners: list[Callable[[str], None]] = []
        self._lanes_added: set[str] = set()
        self._secrets: dict[str, str] = {}  # committed secrets: every authenticated request needs one

    def on_jobs_added(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(lane)`` once a write that added jobs to ``lane`` is committed."""
        self._job_listeners.append(listener)

    def jobs_added(self, lane: str) -> None:
        self._lanes_added.add(lane)
        if not self._depth:
            self._notify_jobs()

    def _notify_jobs(self) -> None:
        lanes, self._lanes_added = self._lanes_added, set()
        for lane in lanes:
            for listener in self._job_listeners:
                listener(lane)

    def _migrate(self) -> None:
        """Bring a state file written by an earlier version up to this schema (columns added since)."""
        added = {"jobs": ("lane TEXT NOT NULL DEFAULT ''", "key TEXT NOT NULL DEFAULT ''",
                          "claimed INTEGER NOT NULL DEFAULT 0"),
                 "journal": ("ignored_fields TEXT",), "idempotency": ("ignored_fields TEXT",)}
        for table, definitions in added.items():
            columns = {row["name"] for row in self.conn.execute(f"PRAGMA table_info({table})").fetchall()}
            for definition in definitions:
                if columns and definition.split()[0] not in columns:
                    self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {definition}")

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; nested calls join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.conn
        except BaseException:
            self._depth = 0
            self._lanes_added.clear()
            self.conn.execute("ROLLBACK")
            raise
        self._depth = 0
        self.conn.execute("COMMIT")
        self._notify_jobs()

    def one(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = self.conn.execute(sql, args).fetchone()
        return row

    def all(self, sql: str, *args: Any) -> list[Row]:
        return list(self.conn.execute(sql, args).fetchall())

    def run(self, sql: str, *args: Any) -> int:
        """Execute a write; returns the last row id."""
        return self.conn.execute(sql, args).lastrowid or 0

    def get_meta(self, key: str) -> str | None:
        row = self.one("SELECT value FROM meta WHERE key = ?", key)
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._secrets.pop(key, None)
        self.run("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                 key, value)

    def clear_meta(self, keep: list[str]) -> None:
        """Drop every ``meta`` entry but those named in ``keep`` (secrets among them are made anew on next use)."""
        self._secrets.clear()
        self.run(f"DELETE FROM meta WHERE key NOT IN ({', '.join('?' * len(keep))})", *keep)

    def secret(self, key: str) -> str:
        """A per-instance secret kept in ``meta``; made on first use from the OS's randomness, never from the
        seeded id stream, so credentials stay unguessable and issuing one never shifts the ids that follow."""
        if key in self._secrets:
            return self._secrets[key]
        value = self.get_meta(key)
        if value is None:
            value = secrets.token_hex(32)
            self.set_meta(key, value)
        elif not self.conn.in_transaction:  # committed, so no rollback can take it back
            self._secrets[key] = value
        return value

    def blob(self, table: str, column: str, rowid: int, *, readonly: bool = True) -> sqlite3.Blob:
        """Incremental I/O on one BLOB cell (read or overwrite it in chunks, its size fixed at insert); use as a
        context manager."""
        return self.conn.blobopen(table, column, rowid, readonly=readonly)

    def wipe(self, keep: tuple[str, ...] = ()) -> None:
        """Delete every row of every table except those named in ``keep``."""
        tables = [r["name"] for r in self.all("SELECT name FROM sqlite_master WHERE type = 'table'")]
        self._secrets.clear()
        with self.tx():
            for table in tables:
                if table not in keep and not table.startswith("sqlite_"):
                    self.run(f"DELETE FROM {table}")
        self.checkpoint()

    def checkpoint(self) -> None:
        """Fold the WAL into the state file (a no-op in memory)."""
        if self.path:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def equal_to(filters: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """``WHERE col = ? AND ...`` for the filters that are set (None means "any"), with its arguments."""
    chosen = {column: value for column, value in filters.items() if value is not None}
    if not chosen:
        return "", []
    return "WHERE " + " AND ".join(f"{column} = ?" for column in chosen), list(chosen.values())


def dumps(value: Any) -> str:
    """Compact JSON for TEXT columns and wire bodies."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes | None) -> Any:
    return None if text is None else json.loads(text)


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Row:
    return {col[0]: value for col, value in zip(cursor.description, row, strict=True)}
