"""The network side of the webhook figure: N plain POSTs of a typical webhook attempt, on the mock's own client.

``python bench/plain_posts.py URL --count 10000`` sends ``count`` POSTs of an ``investor.created`` body, signed
and headed as the dispatcher sends them, through ``mock_server.webhooks.transport.WebhookTransport`` with as many in
flight as a partner's scheduler lane allows, and prints one JSON line: ``{"seconds", "cpu_seconds", "statuses"}``.
It runs as its own process, so the figure holds the client and the network but none of the mock's chain
(scheduler, outbox rows, retry bookkeeping).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter

from mock_server.settings import Settings
from mock_server.store import dumps
from mock_server.webhooks.dispatcher import attempt_headers
from mock_server.webhooks.transport import WebhookTransport

SECRET = "whsec_bench0000000000000000000000000000"


def attempt(number: int) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one ``investor.created`` attempt, as the dispatcher builds them."""
    event_id = f"wde_{number:08x}"
    body = dumps({"eventId": event_id, "eventType": "investor.created", "occurredAt": "2026-01-01T00:00:00.000Z",
                  "data": {"partnerInvestorId": f"hook-{number}", "zestPersonId": f"per_{number:012x}",
                           "email": "ada@example.com", "firstName": "Ada", "lastName": "Byron",
                           "kycManagedBy": "partner"}}).encode()
    return body, attempt_headers(SECRET, int(time.time()), body, event_id, "investor.created")


async def send(url: str, count: int, in_flight: int) -> Counter[int]:
    transport = WebhookTransport()
    slots = asyncio.Semaphore(in_flight)
    statuses: Counter[int] = Counter()

    async def one(number: int) -> None:
        async with slots:
            body, headers = attempt(number)
            statuses[await transport.post(url, body, headers)] += 1

    try:
        await asyncio.gather(*(one(i) for i in range(count)))
    finally:
        transport.close()
    return statuses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("url")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--in-flight", type=int, default=Settings().webhook_lane_concurrency,
                        help="POSTs in flight at once (default: a partner lane's bound, as in the retry chain)")
    args = parser.parse_args()
    started, cpu = time.perf_counter(), time.process_time()
    statuses = asyncio.run(send(args.url, args.count, args.in_flight))
    print(json.dumps({"seconds": round(time.perf_counter() - started, 4),
                      "cpu_seconds": round(time.process_time() - cpu, 4), "statuses": dict(statuses)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
