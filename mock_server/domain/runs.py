"""The end of a scenario run as the mock saw it: the instant the partner's command exited.

The scenario runner marks it (``POST /_mock/runs/exit``) the moment the command's process ends, before the rest of
the timeline plays. The mark holds the simulated and wall instants and how many delivery attempts to the partner
the mock had recorded by then; attempts recorded later started (or were still in flight) after the partner left,
so expectations list them as "after exit" instead of holding them against its receiver. The mark lives in
``meta``, so loading a scenario or a reset clears it. The attempts are counted through their owner,
``webhooks.outbox``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

from mock_server.clock import format_instant
from mock_server.runtime import Runtime
from mock_server.webhooks import outbox

EXIT_KEY = "run_exit"


@dataclass(frozen=True, slots=True)
class RunExit:
    clientId: str
    exitedAt: str  # simulated
    wallAt: float
    attemptsBefore: int  # the partner's delivery attempts recorded when its command exited


def mark_exit(rt: Runtime, client_id: str) -> RunExit:
    """Record now as the instant the partner's command exited (a second mark replaces the first)."""
    recorded = len(outbox.attempts(rt.store, client_id=client_id))
    mark = RunExit(client_id, format_instant(rt.clock.now()), time.time(), recorded)
    rt.store.set_meta(EXIT_KEY, json.dumps(asdict(mark)))
    return mark


def run_exit(rt: Runtime) -> RunExit | None:
    """The last mark since the last reset or scenario load, if any."""
    raw = rt.store.get_meta(EXIT_KEY)
    return RunExit(**json.loads(raw)) if raw else None
