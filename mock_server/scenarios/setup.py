"""Applying a scenario to a running mock: a clean state with the scenario's seed, clock, policy, faults and chaos.

Used by ``POST /_mock/scenarios/{name}/load`` and by ``zest-mock serve --scenario NAME`` at start-up. Partners
(keys, webhook endpoints, tokens) are kept; everything else starts afresh, so a scenario always begins the same way
and the same seed gives the same ids and the same fault decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mock_server.clock import format_instant
from mock_server.domain import faults, partners, policy
from mock_server.domain import state as domain_state
from mock_server.domain.partners import DEV_CLIENT_ID
from mock_server.runtime import Runtime
from mock_server.scenarios.model import Scenario
from mock_server.webhooks.chaos import WebhookChaos, store_chaos

NAME_KEY, STARTED_KEY = "scenario_name", "scenario_started_at"


@dataclass(frozen=True, slots=True)
class AppliedScenario:
    name: str
    seed: int
    started_at: str
    clock: dict[str, object]
    faults: list[dict[str, object]] = field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "startedAt": self.started_at, "clock": self.clock,
                "faults": self.faults}


async def apply_scenario(rt: Runtime, scenario: Scenario) -> AppliedScenario:
    """Reset (partners kept), reseed, set the clock mode, the admin policy, the fault rules and the dev partner's
    webhook chaos, and remember the scenario's name and start instant in ``meta``."""
    await domain_state.reset(rt, keep_partners=True)
    return _configure(rt, scenario)


def apply_at_start(rt: Runtime, scenario: Scenario) -> AppliedScenario:
    """``apply_scenario`` for an instance that is not serving yet (``serve --scenario``)."""
    domain_state.wipe(rt, keep_partners=True)
    return _configure(rt, scenario)


def _configure(rt: Runtime, scenario: Scenario) -> AppliedScenario:
    domain_state.reseed(rt, scenario.seed)
    rt.clock.set_mode(scenario.clock, rt.settings.clock_scale if scenario.clock == "scaled" else None)
    with rt.store.tx():
        for partner in partners.all_partners(rt.store):  # chaos is test state, not partner configuration
            store_chaos(rt.store, partner.client_id, WebhookChaos())
        store_chaos(rt.store, DEV_CLIENT_ID, scenario.webhookChaos or WebhookChaos())
        policy.set_policy(rt, scenario.policy or policy.AdminPolicy())
        rules = [faults.add(rt, rule) for rule in scenario.faults]
        started = format_instant(rt.clock.now())
        rt.store.set_meta(NAME_KEY, scenario.name)
        rt.store.set_meta(STARTED_KEY, started)
    rt.remember_clock()
    return AppliedScenario(scenario.name, scenario.seed, started, rt.clock.describe(), rules)


def current_scenario(rt: Runtime) -> tuple[str, str] | None:
    """(name, start instant) of the scenario loaded last, or None since the last plain reset."""
    name, started = rt.store.get_meta(NAME_KEY), rt.store.get_meta(STARTED_KEY)
    return (name, started) if name and started else None
