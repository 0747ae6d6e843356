"""Delivery of the outbox: one attempt per ``deliver`` job, the production retry schedule, then dead-letter,
with the partner's webhook chaos applied (see ``webhooks.chaos``).

Attempts go out at +0, +30 s, +5 min, +30 min, +2 h, +12 h of simulated time after the event (14 h 35 min 30 s in
all); success is a 2xx within the attempt deadline (10 s of wall time for the whole exchange, so a receiver that
trickles bytes is cut off); redirects, other statuses, refused connections and timeouts are failures. Each
partner has its own concurrency budget, so a hanging receiver slows nobody else.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from mock_server.clock import Clock, format_instant
from mock_server.ids import IdGenerator
from mock_server.scheduler import Job, schedule
from mock_server.settings import Settings
from mock_server.store import Row, Store, dumps
from mock_server.webhooks import signing
from mock_server.webhooks.chaos import parse_chaos
from mock_server.webhooks.events import queue_delivery
from mock_server.webhooks.transport import DeliveryError, WebhookTransport

RETRY_DELAYS_SECONDS = (30, 300, 1800, 7200, 43200)
MAX_ATTEMPTS = len(RETRY_DELAYS_SECONDS) + 1
PER_PARTNER_CONCURRENCY = 64


@dataclass(frozen=True, slots=True)
class Target:
    """Where one event goes: the partner's endpoint and secret, the event row and the delivery row."""

    client_id: str
    url: str
    secret: str
    event: Row
    delivery: Row


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: float

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


_DELIVERY = (
    "SELECT d.*, e.body, e.event_type, p.webhook_url, p.webhook_secret, p.chaos FROM deliveries d "
    "JOIN events e ON e.event_id = d.event_id LEFT JOIN partners p ON p.client_id = d.client_id "
    "WHERE d.delivery_id = ?"
)


class Dispatcher:
    def __init__(self, store: Store, clock: Clock, ids: IdGenerator, settings: Settings) -> None:
        self.store, self.clock, self.ids, self.settings = store, clock, ids, settings
        self.transport = WebhookTransport()
        self._budgets: dict[str, asyncio.Semaphore] = {}

    async def close(self) -> None:
        """Close kept-alive connections (the dispatcher stays usable: new ones open on demand)."""
        self.transport.close()

    async def deliver(self, job: Job) -> dict[str, Any]:
        """Run one attempt of a delivery and schedule the next one, or park, hold, finish or kill the delivery."""
        delivery = self.store.one(_DELIVERY, job.payload["deliveryId"])  # with its event and its partner's endpoint
        if delivery is None or delivery["status"] != "pending":
            return {"outcome": "skipped"}
        url = delivery["webhook_url"]
        if not url:
            self.store.run("UPDATE deliveries SET status = 'awaiting_endpoint' WHERE delivery_id = ?",
                           delivery["delivery_id"])
            return {"outcome": "awaiting_endpoint"}
        chaos = parse_chaos(delivery["chaos"])
        first = delivery["attempts"] == 0 and delivery["kind"] == "original"
        if first and chaos.reorderWindowSeconds and not job.payload.get("released"):
            return self._hold(delivery, chaos.reorderWindowSeconds)
        target = Target(delivery["client_id"], url, delivery["webhook_secret"], delivery, delivery)
        if first and chaos.duplicate:
            with self.store.tx():
                queue_delivery(self.store, self.ids, delivery["event_id"], delivery["client_id"],
                               format_instant(self.clock.now()), kind="duplicate")
        if first and chaos.tamperShare and self.ids.fault_draw() < chaos.tamperShare:
            await self._tamper(target, self.ids.shuffle(list(chaos.tamperKinds))[0])
        at = self.clock.now()
        if delivery["attempts"] < chaos.failAttempts:
            return self._record(delivery, url, at, Outcome(None, "injected_failure", 0.0),
                                "fail_attempts")
        fault = {"duplicate": "duplicate"}.get(delivery["kind"]) or ("reorder" if job.payload.get("released") else None)
        return self._record(delivery, url, at, await self._attempt(target), fault)

    async def release_held(self, job: Job) -> dict[str, Any]:
        """End of a reorder window: deliver the held first attempts one by one, in a seeded shuffled order."""
        held = self.store.all("SELECT delivery_id FROM deliveries WHERE client_id = ? AND status = 'held' "
                              "ORDER BY created_at, delivery_id", job.payload["clientId"])
        order = self.ids.shuffle([row["delivery_id"] for row in held])
        for delivery_id in order:
            self.store.run("UPDATE deliveries SET status = 'pending' WHERE delivery_id = ?", delivery_id)
            await self.deliver(Job(job.id, job.due_at, "deliver", {"deliveryId": delivery_id, "released": True}))
        return {"released": order}

    def resume_parked(self, client_id: str) -> int:
        """Deliveries kept while a partner had no endpoint: due now that it has one."""
        parked = self.store.all("SELECT delivery_id FROM deliveries WHERE client_id = ? AND status = "
                                "'awaiting_endpoint'", client_id)
        now = format_instant(self.clock.now())
        with self.store.tx():
            for row in parked:
                self.store.run("UPDATE deliveries SET status = 'pending', next_attempt_at = ? WHERE delivery_id = ?",
                               now, row["delivery_id"])
                schedule(self.store, "deliver", now, {"deliveryId": row["delivery_id"]})
        return len(parked)

    def _hold(self, delivery: Row, window: float) -> dict[str, Any]:
        release = format_instant(self.clock.now() + timedelta(seconds=window))
        with self.store.tx():
            self.store.run("UPDATE deliveries SET status = 'held' WHERE delivery_id = ?", delivery["delivery_id"])
            pending = self.store.one("SELECT 1 FROM jobs WHERE kind = 'release_held' AND payload = ?",
                                     dumps({"clientId": delivery["client_id"]}))
            if pending is None:
                schedule(self.store, "release_held", release, {"clientId": delivery["client_id"]})
        return {"outcome": "held"}

    async def _tamper(self, target: Target, kind: str) -> None:
        """One forged copy beside the real delivery; the receiver's answer is recorded, never retried."""
        now = self._stamp()
        stamp, secret = (now - 600, target.secret) if kind == "stale_timestamp" else (now, target.secret + "-forged")
        outcome = await self._attempt(target, stamp=stamp, secret=secret)
        refused = outcome.status_code is not None and 400 <= outcome.status_code < 500
        self.store.run(
            "INSERT INTO attempts (delivery_id, event_id, client_id, attempt, at, url, status_code, error, "
            "duration_ms, outcome, fault) VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)",
            target.delivery["delivery_id"], target.delivery["event_id"], target.client_id,
            format_instant(self.clock.now()), target.url, outcome.status_code, outcome.error, outcome.duration_ms,
            "tamper_rejected" if refused else "tamper_accepted", f"tamper:{kind}",
        )

    def _stamp(self) -> int:
        return int(self.clock.now().timestamp() if self.settings.sign_with_simulated_time else time.time())

    async def _attempt(self, target: Target, *, stamp: int | None = None, secret: str | None = None) -> Outcome:
        budget = self._budgets.setdefault(target.client_id, asyncio.Semaphore(PER_PARTNER_CONCURRENCY))
        async with budget:
            body = bytes(target.event["body"])
            signed = signing.header_value(secret or target.secret, self._stamp() if stamp is None else stamp, body)
            headers = {
                "Content-Type": "application/json", signing.HEADER: signed,
                "Zest-Event-Id": target.delivery["event_id"], "Zest-Event-Type": target.event["event_type"],
                "User-Agent": "ZestWebhooks/1.0",
            }
            started = time.perf_counter()
            status, error = await self._post(target.url, body, headers)
            return Outcome(status, error, round((time.perf_counter() - started) * 1000, 3))

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
        try:
            async with asyncio.timeout(self.settings.webhook_timeout_seconds):
                status = await self.transport.post(url, body, headers)
        except TimeoutError:
            return None, "timeout"
        except DeliveryError as exc:
            return None, exc.kind
        except OSError as exc:
            return None, f"transport_error:{type(exc).__name__}"
        return status, None if status < 300 else f"http_{status}"

    def _record(self, delivery: Row, url: str, at: Any, outcome: Outcome, fault: str | None) -> dict[str, Any]:
        attempt = delivery["attempts"] + 1
        if outcome.delivered:
            status, next_at = "delivered", None
        elif attempt >= MAX_ATTEMPTS:
            status, next_at = "dead", None
        else:
            status, next_at = "pending", format_instant(at + timedelta(seconds=RETRY_DELAYS_SECONDS[attempt - 1]))
        with self.store.tx():
            self.store.run(
                "INSERT INTO attempts (delivery_id, event_id, client_id, attempt, at, url, status_code, error, "
                "duration_ms, outcome, next_attempt_at, fault) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                delivery["delivery_id"], delivery["event_id"], delivery["client_id"], attempt, format_instant(at),
                url, outcome.status_code, outcome.error, outcome.duration_ms,
                "delivered" if outcome.delivered else "failed", next_at, fault,
            )
            self.store.run("UPDATE deliveries SET status = ?, attempts = ?, next_attempt_at = ? WHERE delivery_id = ?",
                           status, attempt, next_at, delivery["delivery_id"])
            if next_at:
                schedule(self.store, "deliver", next_at, {"deliveryId": delivery["delivery_id"]})
        return {"deliveryId": delivery["delivery_id"], "eventId": delivery["event_id"], "attempt": attempt,
                "outcome": status, "statusCode": outcome.status_code, "error": outcome.error}
