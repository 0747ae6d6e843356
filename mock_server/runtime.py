"""The runtime of one mock instance: settings, store, clock, ids, contracts, scheduler and webhook dispatcher.

It is the engine the domain runs on, so it imports nothing from ``domain/`` (``app.create_app`` brings the domain's
start-up state in: the dev partner, no write left in flight). Building it loads no pydantic model and no template
contract: the contract registry is read on its first use.
"""

from __future__ import annotations

import functools
import gc
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mock_server.clock import Clock, format_instant, parse_instant
from mock_server.ids import IdGenerator
from mock_server.scheduler import CLOCK_META_KEY, Scheduler
from mock_server.settings import Settings
from mock_server.store import Store
from mock_server.webhooks.dispatcher import Dispatcher

if TYPE_CHECKING:
    from mock_server.contracts import ContractRegistry


@dataclass
class Runtime:
    settings: Settings
    store: Store
    clock: Clock
    ids: IdGenerator
    scheduler: Scheduler
    dispatcher: Dispatcher

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        store = Store(settings.state_path)
        start = parse_instant(settings.clock_start) if settings.clock_start else None
        saved = store.get_meta(CLOCK_META_KEY)
        if saved and start is None:
            start = parse_instant(saved)  # a state file resumes simulated time where it stopped
        clock = Clock(settings.clock_mode, settings.clock_scale, start)
        boots = int(store.get_meta("boots") or 0)
        store.set_meta("boots", str(boots + 1))
        # A restart on a state file must not replay the ids it already handed out: derive a new stream per boot.
        ids = IdGenerator(settings.seed if settings.seed is None or boots == 0 else settings.seed * 1_000_003 + boots)
        scheduler = Scheduler(store, clock, settings.webhook_lane_concurrency)
        return cls(settings, store, clock, ids, scheduler, Dispatcher(store, clock, ids, settings, scheduler))

    @functools.cached_property
    def contracts(self) -> ContractRegistry:
        """The template contracts shipped in the package, read on first use."""
        from mock_server.contracts import ContractRegistry

        return ContractRegistry.load()

    def remember_clock(self) -> None:
        """Keep simulated now in the store, so a restart on a state file resumes from it."""
        self.store.set_meta(CLOCK_META_KEY, format_instant(self.clock.now()))

    def start(self) -> None:
        """Start the background work of a serving app (its lifespan may start and stop more than once)."""
        self.scheduler.start()
        self.dispatcher.reschedule_orphans()  # deliveries a crashed job left pending without a job
        # Everything built so far (modules, models, routes) lives as long as the process: keep it out of the
        # cyclic collector's full passes (one over the startup heap was measured at ~13 ms under load).
        gc.freeze()

    async def stop(self) -> None:
        """Stop background work and make the state file durable; the store stays open for the app's life."""
        await self.scheduler.stop()
        await self.dispatcher.close()
        self.remember_clock()
        self.store.checkpoint()
