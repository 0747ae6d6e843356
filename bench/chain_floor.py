"""The floor of the webhook figure: the least a retry chain could cost beyond the network, in this stack.

``python bench/chain_floor.py --events 10000 --attempts 6`` writes, in an in-memory store of the mock's schema,
what every attempt of a failing chain must leave behind for ``GET /_mock/webhooks/deliveries`` to list it: its
attempt row and its delivery's new status (``outbox.record_attempt``), one transaction per wave of ``events``
attempts. Nothing else the chain does is in it: no job, no scheduling, no signature, no HTTP, no per-attempt
commit. It prints one JSON line: ``{"seconds", "attempts"}``. Beside T_plain / 10 it says whether any design that
records every attempt in SQLite from Python could meet the target.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from mock_server.store import Store
from mock_server.webhooks import outbox

AT = "2026-01-01T00:00:00.000Z"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--attempts", type=int, default=6, help="attempts per event (the whole chain)")
    args = parser.parse_args()
    store = Store()
    deliveries = [(f"del_{i:012x}", f"wde_{i:08x}") for i in range(args.events)]
    with store.tx():
        for delivery_id, event_id in deliveries:
            outbox.add_delivery(store, delivery_id, event_id, "bench", "pending", AT, "original")
    started = time.perf_counter()
    for attempt in range(1, args.attempts + 1):
        status = "dead" if attempt == args.attempts else "pending"
        with store.tx():
            for delivery_id, event_id in deliveries:
                outbox.record_attempt(store, outbox.Attempt(
                    delivery_id, event_id, "bench", attempt, AT, "http://127.0.0.1:9/hook", 500, "http_500", 0.2,
                    "failed", None if status == "dead" else AT, None), status)
    print(json.dumps({"seconds": round(time.perf_counter() - started, 4), "attempts": args.events * args.attempts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
