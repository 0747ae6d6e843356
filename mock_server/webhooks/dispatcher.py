"""Delivery of the outbox: one attempt per ``deliver`` job, the production retry schedule, then dead-letter.

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

import httpx

from mock_server.clock import Clock, format_instant
from mock_server.domain import partners
from mock_server.scheduler import Job, schedule
from mock_server.settings import Settings
from mock_server.store import Row, Store
from mock_server.webhooks import signing

RETRY_DELAYS_SECONDS = (30, 300, 1800, 7200, 43200)
MAX_ATTEMPTS = len(RETRY_DELAYS_SECONDS) + 1
PER_PARTNER_CONCURRENCY = 64


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: float

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Dispatcher:
    def __init__(self, store: Store, clock: Clock, settings: Settings) -> None:
        self.store, self.clock, self.settings = store, clock, settings
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(settings.webhook_timeout_seconds),
                                        follow_redirects=False, limits=httpx.Limits(max_connections=None))
        self._budgets: dict[str, asyncio.Semaphore] = {}

    async def close(self) -> None:
        await self.client.aclose()

    async def deliver(self, job: Job) -> dict[str, Any]:
        """Run one attempt of a delivery and schedule the next one, or park, finish or kill the delivery."""
        delivery = self.store.one("SELECT * FROM deliveries WHERE delivery_id = ?", job.payload["deliveryId"])
        if delivery is None or delivery["status"] != "pending":
            return {"outcome": "skipped"}
        partner = partners.find(self.store, delivery["client_id"])
        if partner is None or not partner.webhook_url:
            self.store.run("UPDATE deliveries SET status = 'awaiting_endpoint' WHERE delivery_id = ?",
                           delivery["delivery_id"])
            return {"outcome": "awaiting_endpoint"}
        event = self.store.one("SELECT body, event_type FROM events WHERE event_id = ?", delivery["event_id"])
        assert event is not None
        at = self.clock.now()
        outcome = await self._attempt(partner.client_id, partner.webhook_url, partner.webhook_secret, event, delivery)
        return self._record(delivery, partner.webhook_url, at, outcome)

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

    async def _attempt(self, client_id: str, url: str, secret: str, event: Row, delivery: Row) -> Outcome:
        budget = self._budgets.setdefault(client_id, asyncio.Semaphore(PER_PARTNER_CONCURRENCY))
        async with budget:
            body = bytes(event["body"])
            stamp = int(self.clock.now().timestamp() if self.settings.sign_with_simulated_time else time.time())
            headers = {
                "Content-Type": "application/json", signing.HEADER: signing.header_value(secret, stamp, body),
                "Zest-Event-Id": delivery["event_id"], "Zest-Event-Type": event["event_type"],
                "User-Agent": "ZestWebhooks/1.0",
            }
            started = time.perf_counter()
            status, error = await self._post(url, body, headers)
            return Outcome(status, error, round((time.perf_counter() - started) * 1000, 3))

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
        try:
            async with asyncio.timeout(self.settings.webhook_timeout_seconds):
                response = await self.client.post(url, content=body, headers=headers)
        except TimeoutError:
            return None, "timeout"
        except httpx.ConnectTimeout:
            return None, "connect_timeout"
        except httpx.TimeoutException:
            return None, "timeout"
        except httpx.ConnectError:
            return None, "connect_error"
        except (httpx.TransportError, httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            return None, f"transport_error:{type(exc).__name__}"
        return response.status_code, None if response.status_code < 300 else f"http_{response.status_code}"

    def _record(self, delivery: Row, url: str, at: Any, outcome: Outcome) -> dict[str, Any]:
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
                "duration_ms, outcome, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                delivery["delivery_id"], delivery["event_id"], delivery["client_id"], attempt, format_instant(at),
                url, outcome.status_code, outcome.error, outcome.duration_ms,
                "delivered" if outcome.delivered else "failed", next_at,
            )
            self.store.run("UPDATE deliveries SET status = ?, attempts = ?, next_attempt_at = ? WHERE delivery_id = ?",
                           status, attempt, next_at, delivery["delivery_id"])
            if next_at:
                schedule(self.store, "deliver", next_at, {"deliveryId": delivery["delivery_id"]})
        return {"deliveryId": delivery["delivery_id"], "eventId": delivery["event_id"], "attempt": attempt,
                "outcome": status, "statusCode": outcome.status_code, "error": outcome.error}
