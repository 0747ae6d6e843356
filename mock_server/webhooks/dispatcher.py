"""Delivery of the outbox: one attempt per ``deliver`` job, the production retry schedule, then dead-letter,
with the partner's webhook chaos applied (see ``webhooks.chaos``).

Attempts go out at +0, +30 s, +5 min, +30 min, +2 h, +12 h of simulated time after the event (14 h 35 min 30 s in
all); success is a 2xx within the attempt deadline (10 s of wall time for the whole exchange, so a receiver that
trickles bytes is cut off); redirects, other statuses, refused connections and timeouts are failures. An attempt's
``duration_ms`` is the acknowledgement time: from the request's first byte written to the answer complete (from the
connection attempt when no byte went out), measured here, not by the receiver.

Each job runs in its partner's scheduler lane, so a hanging receiver holds only its own partner's slots. An attempt
is stamped with its job's due time, and what it did (the attempt row, the delivery's new status, the next attempt's
job, a tamper copy) is recorded in one transaction that also removes the job: a crash before it
leaves the job to run again with nothing recorded, a crash after it leaves nothing to repeat. A chaos duplicate
is queued just before the original's first attempt, once per event. Deliveries left
pending without a job (a job that raised) are rescheduled on start and after any job fails.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from mock_server.clock import Clock, format_instant, parse_instant
from mock_server.domain import partners
from mock_server.domain.partners import Partner
from mock_server.ids import IdGenerator
from mock_server.scheduler import Job, Scheduler, exists, finish, keys, schedule
from mock_server.settings import Settings
from mock_server.store import Row, Store
from mock_server.webhooks import outbox, signing
from mock_server.webhooks.events import queue_delivery, schedule_attempt
from mock_server.webhooks.exchange import DeliveryError, Timing
from mock_server.webhooks.transport import WebhookTransport

if TYPE_CHECKING:
    from mock_server.webhooks.chaos import WebhookChaos

RETRY_DELAYS_SECONDS = (30, 300, 1800, 7200, 43200)
MAX_ATTEMPTS = len(RETRY_DELAYS_SECONDS) + 1
FAILED_JOB_RETRY_SECONDS = RETRY_DELAYS_SECONDS[0]  # a job that raised runs again this much later, not in a loop


def attempt_headers(secret: str, stamp: int, body: bytes, event_id: str, event_type: str) -> dict[str, str]:
    """The headers of one attempt: the signature over ``stamp`` and ``body``, the event's id and type."""
    return {"Content-Type": "application/json", signing.HEADER: signing.header_value(secret, stamp, body),
            "Zest-Event-Id": event_id, "Zest-Event-Type": event_type, "User-Agent": "ZestWebhooks/1.0"}


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: float

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class _Send:
    """One delivery about to be attempted: its row (with the event), its partner and chaos, and its job."""

    job: Job
    delivery: Row
    partner: Partner
    url: str
    chaos: WebhookChaos

    @property
    def first(self) -> bool:
        return self.delivery["attempts"] == 0 and self.delivery["kind"] == "original"


class Dispatcher:
    def __init__(self, store: Store, clock: Clock, ids: IdGenerator, settings: Settings,
                 scheduler: Scheduler) -> None:
        self.store, self.clock, self.ids, self.settings, self.scheduler = store, clock, ids, settings, scheduler
        self.transport = WebhookTransport()

    async def close(self) -> None:
        """Close kept-alive connections (the dispatcher stays usable: new ones open on demand)."""
        self.transport.close()

    async def deliver(self, job: Job) -> dict[str, Any]:
        """Run one attempt of a delivery and schedule the next one, or park, hold, finish or kill the delivery."""
        delivery = outbox.delivery(self.store, job.payload["deliveryId"])
        if delivery is None or delivery["status"] != "pending":
            return {"outcome": "skipped"}
        send = self._prepare(job, delivery)
        if send is None:
            with self.store.tx():
                outbox.set_status(self.store, delivery["delivery_id"], "awaiting_endpoint")
                finish(self.store, job)
            return {"outcome": "awaiting_endpoint"}
        if send.first and send.chaos.reorderWindowSeconds and not job.payload.get("released"):
            return self._hold(send, send.chaos.reorderWindowSeconds)
        return await self._send(send, finish_job=True)

    async def release_held(self, job: Job) -> dict[str, Any]:
        """End of a reorder window: deliver the held first attempts one by one, in a seeded shuffled order."""
        held = outbox.with_status(self.store, "held", job.key)
        order = self.ids.shuffle([row["delivery_id"] for row in held])
        for delivery_id in order:
            delivery = outbox.delivery(self.store, delivery_id)
            send = self._prepare(job, delivery) if delivery is not None else None
            if send is None or not self.scheduler.current(job):
                continue
            await self._send(send, finish_job=False, released=True)
        return {"released": order}

    def resume_parked(self, client_id: str) -> int:
        """Deliveries kept while a partner had no endpoint: due now that it has one."""
        parked = outbox.with_status(self.store, "awaiting_endpoint", client_id)
        now = format_instant(self.clock.now())
        with self.store.tx():
            for row in parked:
                outbox.set_status(self.store, row["delivery_id"], "pending", now)
                schedule_attempt(self.store, client_id, row["delivery_id"], now)
        return len(parked)

    def reschedule_orphans(self, failed: Job | None = None) -> int:
        """Give every pending delivery without a job its job back (at its next attempt time), and every held one
        its release; the delivery of a job that just raised waits ``FAILED_JOB_RETRY_SECONDS`` first."""
        now = self.clock.now()
        scheduled, releases = keys(self.store, "deliver"), keys(self.store, "release_held")
        orphans = [r for r in outbox.with_status(self.store, "pending") if r["delivery_id"] not in scheduled]
        held = {r["client_id"] for r in outbox.with_status(self.store, "held")} - releases
        with self.store.tx():
            for row in orphans:
                due = row["next_attempt_at"] or format_instant(now)
                if failed is not None and failed.key == row["delivery_id"]:
                    due = format_instant(now + timedelta(seconds=FAILED_JOB_RETRY_SECONDS))
                schedule_attempt(self.store, row["client_id"], row["delivery_id"], due)
            for client_id in held:
                schedule(self.store, "release_held", now, lane=client_id, key=client_id)
        return len(orphans) + len(held)

    def _prepare(self, job: Job, delivery: Row) -> _Send | None:
        partner = partners.find(self.store, delivery["client_id"])
        if partner is None or not partner.webhook_url:
            return None
        from mock_server.webhooks.chaos import parse_chaos  # pydantic: loaded with the first delivery, not at start

        chaos = parse_chaos(partner.chaos)
        return _Send(job, delivery, partner, partner.webhook_url, chaos)

    def _hold(self, send: _Send, window: float) -> dict[str, Any]:
        client_id = send.partner.client_id
        with self.store.tx():
            outbox.set_status(self.store, send.delivery["delivery_id"], "held")
            if not exists(self.store, "release_held", client_id):
                release = send.job.due + timedelta(seconds=window)
                schedule(self.store, "release_held", release, lane=client_id, key=client_id)
            finish(self.store, send.job)
        return {"outcome": "held"}

    async def _send(self, send: _Send, *, finish_job: bool, released: bool = False) -> dict[str, Any]:
        """Attempt (with chaos), then record everything in one transaction, unless a reset came in between."""
        delivery, chaos, at = send.delivery, send.chaos, send.job.due
        if send.first and chaos.duplicate and not outbox.has_kind(self.store, delivery["event_id"], "duplicate"):
            with self.store.tx():  # beside the original, not after it; once per event, even if this job reruns
                queue_delivery(self.store, self.ids, delivery["event_id"], delivery["client_id"],
                               format_instant(at), kind="duplicate")
        tamper: tuple[str, Outcome] | None = None
        if send.first and chaos.tamperShare and self.ids.fault_draw() < chaos.tamperShare:
            kind = self.ids.shuffle(list(chaos.tamperKinds))[0]
            tamper = kind, await self._tamper(send, kind)
        if delivery["attempts"] < chaos.failAttempts:
            outcome, fault = Outcome(None, "injected_failure", 0.0), "fail_attempts"
        else:
            outcome = await self._attempt(send, self._stamp(send))
            fault = "duplicate" if delivery["kind"] == "duplicate" else ("reorder" if released else None)
        if not self.scheduler.current(send.job):
            return {"outcome": "discarded: the state was reset"}
        with self.store.tx():
            if tamper is not None:
                self._record_tamper(send, *tamper)
            summary = self._record(delivery, send.url, format_instant(at), outcome, fault)
            if finish_job:
                finish(self.store, send.job)
        return summary

    async def _tamper(self, send: _Send, kind: str) -> Outcome:
        """One forged copy beside the real delivery; the receiver's answer is recorded, never retried."""
        now = self._stamp(send)
        secret = send.partner.webhook_secret
        if kind == "stale_timestamp":
            return await self._attempt(send, now - 600, secret)
        return await self._attempt(send, now, secret + "-forged")

    def _record_tamper(self, send: _Send, kind: str, outcome: Outcome) -> None:
        refused = outcome.status_code is not None and 400 <= outcome.status_code < 500
        outbox.record_attempt(self.store, outbox.Attempt(
            send.delivery["delivery_id"], send.delivery["event_id"], send.partner.client_id, 0,
            format_instant(send.job.due), send.url, outcome.status_code, outcome.error, outcome.duration_ms,
            "tamper_rejected" if refused else "tamper_accepted", None, f"tamper:{kind}",
        ))

    def _stamp(self, send: _Send) -> int:
        """The signature's ``t``: wall time (what the partner's receiver checks), or the attempt's simulated time."""
        return int(send.job.due.timestamp() if self.settings.sign_with_simulated_time else time.time())

    async def _attempt(self, send: _Send, stamp: int, secret: str | None = None) -> Outcome:
        body = bytes(send.delivery["body"])
        headers = attempt_headers(secret or send.partner.webhook_secret, stamp, body, send.delivery["event_id"],
                                  send.delivery["event_type"])
        timing, started = Timing(), time.perf_counter()
        status, error = await self._post(send.url, body, headers, timing)
        answered = timing.answered or time.perf_counter()
        return Outcome(status, error, round((answered - (timing.sent or started)) * 1000, 3))

    async def _post(self, url: str, body: bytes, headers: dict[str, str],
                    timing: Timing) -> tuple[int | None, str | None]:
        try:
            async with asyncio.timeout(self.settings.webhook_timeout_seconds):
                status = await self.transport.post(url, body, headers, timing)
        except TimeoutError:
            return None, "timeout"
        except DeliveryError as exc:
            return None, exc.kind
        except OSError as exc:
            return None, f"transport_error:{type(exc).__name__}"
        return status, None if status < 300 else f"http_{status}"

    def _record(self, delivery: Row, url: str, at: str, outcome: Outcome, fault: str | None) -> dict[str, Any]:
        attempt = delivery["attempts"] + 1
        if outcome.delivered:
            status, next_at = "delivered", None
        elif attempt >= MAX_ATTEMPTS:
            status, next_at = "dead", None
        else:
            next_at = format_instant(parse_instant(at) + timedelta(seconds=RETRY_DELAYS_SECONDS[attempt - 1]))
            status = "pending"
        outbox.record_attempt(self.store, outbox.Attempt(
            delivery["delivery_id"], delivery["event_id"], delivery["client_id"], attempt, at, url,
            outcome.status_code, outcome.error, outcome.duration_ms, "delivered" if outcome.delivered else "failed",
            next_at, fault,
        ), status)
        if next_at:
            schedule_attempt(self.store, delivery["client_id"], delivery["delivery_id"], next_at)
        return {"deliveryId": delivery["delivery_id"], "eventId": delivery["event_id"], "attempt": attempt,
                "outcome": status, "statusCode": outcome.status_code, "error": outcome.error}

