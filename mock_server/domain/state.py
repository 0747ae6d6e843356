"""The mock's whole state as a test sees it: reset, reseed, and a per-partner summary of every resource (read
through each table's owner).

Reset is an epoch: nothing that ran before it (attempts in flight, their retries, held deliveries, chaos) is ever
recorded into or delivered from the state after it. Reset empties every table (partner configuration optionally
kept) and leaves the instance as if freshly started: the dev partner exists, the admin policy is the configured
one. Instance bookkeeping in ``meta`` (boot count, remembered clock) survives, so a restart on a state file still
draws fresh ids and resumes simulated time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from mock_server import scheduler
from mock_server.domain import investors, journal, partners, policy, spv_requests, subscriptions
from mock_server.runtime import Runtime
from mock_server.scheduler import CLOCK_META_KEY
from mock_server.store import Row
from mock_server.webhooks import outbox

# meta keys that describe the instance rather than the test's state; a reset keeps them.
_INSTANCE_META = ("boots", CLOCK_META_KEY)
_TOKEN_SECRET = "access_token_secret"  # kept with the partners, so their tokens stay valid


class Resources(BaseModel):
    """Resources of one kind, oldest first, with a count per status when the kind has one."""

    count: int
    byStatus: dict[str, int] | None = None
    items: list[dict[str, Any]]


class Tally(BaseModel):
    count: int
    byStatus: dict[str, int] | None = None
    byType: dict[str, int] | None = None


class PartnerState(BaseModel):
    spvRequests: Resources
    spvs: Resources
    investors: Resources
    subscriptions: Resources
    events: Tally
    deliveries: Tally


class MockState(BaseModel):
    clock: dict[str, Any]
    seed: int
    pendingJobs: int
    journaledRequests: int
    partners: dict[str, PartnerState]


async def reset(rt: Runtime, *, keep_partners: bool) -> list[str]:
    """Start a new epoch: stop every running job (attempts in flight included: nothing they did is recorded), wipe
    the state (partners kept if asked), then restore the dev partner and the configured admin policy.

    Returns the clientIds registered afterwards.
    """
    await rt.scheduler.reset()
    await rt.dispatcher.close()
    return wipe(rt, keep_partners=keep_partners)


def wipe(rt: Runtime, *, keep_partners: bool) -> list[str]:
    """The state part of ``reset``, for an instance with nothing running yet (start-up)."""
    rt.store.wipe(keep=("partners", "meta") if keep_partners else ("meta",))
    kept = [*_INSTANCE_META, *((_TOKEN_SECRET,) if keep_partners else ())]
    # Kept partners keep their webhook endpoint even when a flag configured the dev partner's at start-up.
    url, secret = (None, None) if keep_partners else (rt.settings.webhook_url, rt.settings.webhook_secret)
    with rt.store.tx():
        rt.store.clear_meta(keep=kept)
        partners.clear_chaos(rt.store)
        partners.ensure_dev_partner(rt.store, rt.clock, url, secret)
        if rt.settings.admin_policy:
            policy.set_policy(rt, policy.parse(rt.settings.admin_policy))
    return [p.client_id for p in partners.all_partners(rt.store)]


def reseed(rt: Runtime, seed: int) -> int:
    """Restart the id stream: the same seed then yields the same ids for the same sequence of calls."""
    rt.ids.reseed(seed)
    return rt.ids.seed


def snapshot(rt: Runtime) -> MockState:
    """Counts and resources per partner, plus the clock, the seed, pending jobs and the journal's size."""
    grouped = {name: _by_client(rows(rt)) for name, (rows, _) in _RESOURCES.items()}
    grouped |= {name: _by_client(rows(rt)) for name, (rows, _) in _TALLIES.items()}
    client_ids = [p.client_id for p in partners.all_partners(rt.store)]
    for by_client in grouped.values():
        client_ids += [c for c in by_client if c not in client_ids]  # resources of a partner no longer registered
    return MockState(
        clock=rt.clock.describe(), seed=rt.ids.seed, pendingJobs=scheduler.count(rt.store),
        journaledRequests=journal.count(rt.store),
        partners={c: _partner_state(grouped, c) for c in client_ids},
    )


# name -> (rows from the table's owner, wire field -> column) of the resources listed per partner, oldest first
_RESOURCES: dict[str, tuple[Callable[[Runtime], list[Row]], dict[str, str]]] = {
    "spvRequests": (spv_requests.summary, {"spvRequestSlug": "slug", "status": "status"}),
    "spvs": (spv_requests.spv_summary, {"vehicleSlug": "vehicle_slug", "spvRequestSlug": "spv_request_slug"}),
    "investors": (investors.summary, {"zestPersonId": "person_id", "partnerInvestorId": "partner_investor_id"}),
    "subscriptions": (subscriptions.summary, {"subscriptionSlug": "slug", "status": "status", "spvSlug": "spv_slug",
                                              "zestPersonId": "person_id"}),
}
# name -> (rows from the outbox, (wire key, column)) of what is only counted per partner
_TALLIES: dict[str, tuple[Callable[[Runtime], list[Row]], tuple[str, str]]] = {
    "events": (lambda rt: outbox.event_types(rt.store), ("byType", "event_type")),
    "deliveries": (lambda rt: outbox.delivery_statuses(rt.store), ("byStatus", "status")),
}


def _partner_state(grouped: dict[str, dict[str, list[Row]]], client_id: str) -> PartnerState:
    values: dict[str, Any] = {
        name: _resources(grouped[name].get(client_id, []), fields) for name, (_, fields) in _RESOURCES.items()}
    values |= {name: _tally(grouped[name].get(client_id, []), *keys) for name, (_, keys) in _TALLIES.items()}
    return PartnerState(**values)


def _by_client(rows: list[Row]) -> dict[str, list[Row]]:
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(row["client_id"], []).append(row)
    return grouped


def _resources(rows: list[Row], fields: dict[str, str]) -> Resources:
    by_status = dict(Counter(r["status"] for r in rows)) if "status" in fields.values() else None
    items = [{wire: row[column] for wire, column in fields.items()} for row in rows]
    return Resources(count=len(rows), byStatus=by_status, items=items)


def _tally(rows: list[Row], key: str, column: str) -> Tally:
    return Tally.model_validate({"count": len(rows), key: dict(Counter(r[column] for r in rows))})
