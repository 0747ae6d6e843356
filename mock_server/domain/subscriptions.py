"""Subscriptions (Bids): atomic bulk creation on an approved SPV, the admin's completion, exactly-once completion event.

Statuses: pending -> form_uploaded -> funded -> completed; ``completed`` and ``cancelled`` are terminal. A person
holds at most one open subscription per SPV (the upload paths address it by SPV and person). Owner of the
``subscriptions`` table.
"""

from __future__ import annotations

from mock_server.clock import format_instant, parse_instant
from mock_server.domain import investors, spv_requests
from mock_server.domain.partners import Partner
from mock_server.errors import Conflict, FieldError, NotFound, ValidationFailed
from mock_server.models import (
    SubscriptionBulkCreate,
    SubscriptionBulkResponse,
    SubscriptionCreateRow,
    SubscriptionResult,
)
from mock_server.runtime import Runtime
from mock_server.store import Row, dumps, loads
from mock_server.webhooks import events

TERMINAL = ("completed", "cancelled")
HOLDER_SELECT = "SELECT s.* FROM subscriptions s"


def bulk_create(rt: Runtime, partner: Partner, spv_slug: str, body: SubscriptionBulkCreate) -> SubscriptionBulkResponse:
    spv = spv_requests.find_spv(rt, spv_slug, partner.client_id)
    if spv is None:
        raise NotFound(f"SPV {spv_slug!r} does not exist or is not visible to this client")
    _check_rows(rt, partner, spv, body)
    results = [_insert(rt, partner, spv_slug, row) for row in body.subscriptions]
    return SubscriptionBulkResponse(results=results)


def holder_row(rt: Runtime, client_id: str, spv_slug: str, person_id: str) -> Row:
    """The open (or latest) subscription of ``person_id`` on ``spv_slug``, as uploads address it."""
    row = rt.store.one(
        f"{HOLDER_SELECT} WHERE s.client_id = ? AND s.spv_slug = ? AND s.person_id = ? ORDER BY s.seq DESC LIMIT 1",
        client_id, spv_slug, person_id,
    )
    if row is None:
        raise NotFound(f"no subscription of person {person_id!r} on SPV {spv_slug!r} is visible to this client")
    return _holder(rt, row)


def complete(rt: Runtime, subscription_slug: str, *, emit: bool = True) -> Row:
    """The admin marks a funded Bid completed; ``emit=False`` leaves the event to the reconciler."""
    row = holder_by_slug(rt, subscription_slug)
    if row["status"] in TERMINAL:
        raise Conflict(f"subscription {subscription_slug} is already {row['status']}")
    if not row["funding_sha256"]:
        raise Conflict(f"subscription {subscription_slug} has no funding receipt on record yet")
    rt.store.run("UPDATE subscriptions SET status = 'completed', completed_at = ? WHERE slug = ?",
                 format_instant(rt.clock.now()), subscription_slug)
    if emit:
        emit_completion(rt, subscription_slug)
    return holder_by_slug(rt, subscription_slug)


def emit_completion(rt: Runtime, subscription_slug: str) -> bool:
    """Emit ``subscription.completed`` once per Bid, whatever path asks; False when it was already emitted."""
    row = holder_by_slug(rt, subscription_slug)
    if row["status"] != "completed" or row["completion_emitted"]:
        return False
    rt.store.run("UPDATE subscriptions SET completion_emitted = 1 WHERE slug = ?", subscription_slug)
    # occurredAt is the admin's completion time, not the time of the emitting sweep.
    completed_at = row["completed_at"]
    events.emit(rt.store, rt.ids, row["client_id"], "subscription.completed",
                events.subscription_completed_data(row), parse_instant(completed_at))
    return True


def admin_list(rt: Runtime, status: str | None, client_id: str | None, limit: int) -> list[Row]:
    """Every partner's subscriptions with their form and funding columns: the latest ``limit``, oldest first."""
    rows = rt.store.all(f"{HOLDER_SELECT} WHERE (? IS NULL OR s.status = ?) AND (? IS NULL OR s.client_id = ?) "
                        "ORDER BY s.seq DESC LIMIT ?", status, status, client_id, client_id, limit)
    return [_holder(rt, r) for r in reversed(rows)]


def status_of(rt: Runtime, slug: str) -> str | None:
    row = rt.store.one("SELECT status FROM subscriptions WHERE slug = ?", slug)
    return row["status"] if row else None


def unemitted_completions(rt: Runtime) -> list[str]:
    rows = rt.store.all("SELECT slug FROM subscriptions WHERE status = 'completed' AND completion_emitted = 0")
    return [r["slug"] for r in rows]


def to_result(row: Row) -> SubscriptionResult:
    return SubscriptionResult(
        partnerSubscriptionId=row["partner_subscription_id"], subscriptionSlug=row["slug"], spvSlug=row["spv_slug"],
        personId=row["person_id"], status=row["status"], lumpSum=loads(row["lump_sum"]),
        shareClassSlug=row["share_class_slug"],
    )


def _check_rows(rt: Runtime, partner: Partner, spv: Row, body: SubscriptionBulkCreate) -> None:
    slugs = {sc["slug"] for sc in loads(spv["share_classes"])}
    problems: list[FieldError] = []
    for i, row in enumerate(body.subscriptions):
        if row.shareClassSlug not in slugs:
            problems.append(FieldError(f"subscriptions[{i}].shareClassSlug", "enum",
                                       f"shareClassSlug must be one of {sorted(slugs)}", row.shareClassSlug))
        if row.lumpSum.currency != spv["currency"]:
            problems.append(FieldError(f"subscriptions[{i}].lumpSum.currency", "currency_mismatch",
                                       f"lumpSum currency must be the SPV currency {spv['currency']}",
                                       row.lumpSum.currency))
    if problems:
        raise ValidationFailed(problems)
    people = [row.zestPersonId for row in body.subscriptions]
    for person_id in people:
        if not investors.exists(rt, partner.client_id, person_id):
            raise NotFound(f"person {person_id!r} does not exist or is not visible to this client")
    if len(set(people)) < len(people):
        raise Conflict("the same zestPersonId appears twice: a person holds one open subscription per SPV")
    for person_id in people:
        if rt.store.one("SELECT 1 FROM subscriptions WHERE spv_slug = ? AND person_id = ? AND status NOT IN (?, ?)",
                        spv["vehicle_slug"], person_id, *TERMINAL):
            raise Conflict(f"person {person_id} already has an open subscription on SPV {spv['vehicle_slug']}")


def _insert(rt: Runtime, partner: Partner, spv_slug: str, row: SubscriptionCreateRow) -> SubscriptionResult:
    slug = rt.ids.fresh("sub_", lambda s: status_of(rt, s) is not None)
    rt.store.run(
        "INSERT INTO subscriptions (slug, client_id, spv_slug, person_id, status, lump_sum, share_class_slug, "
        "partner_subscription_id, created_at) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
        slug, partner.client_id, spv_slug, row.zestPersonId, dumps(row.lumpSum.model_dump()), row.shareClassSlug,
        row.partnerSubscriptionId, format_instant(rt.clock.now()),
    )
    stored = holder_by_slug(rt, slug)
    events.emit(rt.store, rt.ids, partner.client_id, "subscription.created",
                events.subscription_created_data(stored), rt.clock.now())
    return to_result(stored)


def holder_by_slug(rt: Runtime, slug: str) -> Row:
    """A subscription by slug, with its person's partnerInvestorId."""
    row = rt.store.one(f"{HOLDER_SELECT} WHERE s.slug = ?", slug)
    if row is None:
        raise NotFound(f"subscription {slug!r} does not exist")
    return _holder(rt, row)


def record_form(rt: Runtime, slug: str, sha256: str) -> None:
    """The signed form is on record (a pending Bid moves to ``form_uploaded``)."""
    rt.store.run(
        "UPDATE subscriptions SET form_sha256 = ?, form_uploaded_at = ?, "
        "status = CASE status WHEN 'pending' THEN 'form_uploaded' ELSE status END WHERE slug = ?",
        sha256, format_instant(rt.clock.now()), slug,
    )


def record_funding(rt: Runtime, slug: str, sha256: str, amount: str, currency: str, wire_reference: str) -> None:
    """The funding receipt and wire metadata are on record: the Bid is ``funded``."""
    rt.store.run(
        "UPDATE subscriptions SET funding_sha256 = ?, funding_uploaded_at = ?, funding_amount = ?, "
        "funding_currency = ?, wire_reference = ?, status = 'funded' WHERE slug = ?",
        sha256, format_instant(rt.clock.now()), amount, currency, wire_reference, slug,
    )


def summary(rt: Runtime) -> list[Row]:
    """(client_id, slug, status, spv_slug, person_id) of every Bid, oldest first, for the state summary."""
    return rt.store.all("SELECT client_id, slug, status, spv_slug, person_id FROM subscriptions ORDER BY seq")


def _holder(rt: Runtime, row: Row) -> Row:
    """The row with its person's partnerInvestorId (None when the person has none)."""
    return {**row, "partner_investor_id": investors.partner_investor_id(rt, row["client_id"], row["person_id"])}
