"""SPV requests: create (validated against the contract template), read, list, cancel, and the admin's review.

State machine: pending-review -> approved | rejected | cancelled, all three terminal. Approval materialises the
SPV (opportunity, vehicle, SP, SPC slugs) and its share classes; the vehicle slug is what subscriptions address.
Owner of the ``spv_requests`` and ``spvs`` tables.
"""

from __future__ import annotations

from typing import Any

from mock_server.clock import format_instant
from mock_server.domain import partners, policy
from mock_server.domain.partners import Partner
from mock_server.errors import Conflict, NotFound
from mock_server.models import AggregationResponse, SpvRequestCreate, SpvRequestResponse
from mock_server.runtime import Runtime
from mock_server.store import Row, dumps, loads
from mock_server.webhooks import events

PENDING = "pending-review"
_SELECT = "SELECT r.* FROM spv_requests r"


def create(rt: Runtime, partner: Partner, body: SpvRequestCreate) -> SpvRequestResponse:
    rt.contracts.validate(body.templateId, body.templateVersion, body.attributes)
    now = format_instant(rt.clock.now())
    slug = rt.ids.fresh("svr_", lambda s: _exists(rt, s))
    rt.store.run(
        "INSERT INTO spv_requests (slug, client_id, status, template_id, template_version, attributes, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        slug, partner.client_id, PENDING, body.templateId, body.templateVersion, dumps(body.attributes), now, now,
    )
    policy.after_spv_request_created(rt, slug)
    return _emit_and_read(rt, partner.client_id, slug, "spv_request.created")


def get(rt: Runtime, partner: Partner, slug: str) -> SpvRequestResponse:
    """One of ``partner``'s requests; its tenant slug is the partner's, not read again."""
    return to_response({**_own_row(rt, partner.client_id, slug), "tenant_slug": partner.tenant_slug})


def list_page(rt: Runtime, client_id: str, page: int, per_page: int, status: str | None) -> AggregationResponse:
    where, args = "r.client_id = ?", [client_id]
    if status:
        where, args = where + " AND r.status = ?", [*args, status]
    total = rt.store.one(f"SELECT COUNT(*) AS n FROM spv_requests r WHERE {where}", *args)
    rows = rt.store.all(f"{_SELECT} WHERE {where} ORDER BY r.created_at DESC, r.seq DESC LIMIT ? OFFSET ?",
                        *args, per_page, (page - 1) * per_page)
    documents = [to_response(r) for r in _with_tenants(rt, rows)]
    return AggregationResponse(documents=documents, count=total["n"] if total else 0, skip=(page - 1) * per_page,
                               limit=per_page)


def cancel(rt: Runtime, client_id: str, slug: str) -> SpvRequestResponse:
    _require_pending(_row(rt, client_id, slug), "cancelled")
    now = format_instant(rt.clock.now())
    rt.store.run("UPDATE spv_requests SET status = 'cancelled', cancelled_at = ?, updated_at = ? WHERE slug = ?",
                 now, now, slug)
    return _emit_and_read(rt, client_id, slug, "spv_request.cancelled")


def approve(rt: Runtime, slug: str) -> SpvRequestResponse:
    row = _require_pending(_any_row(rt, slug), "approved")
    now = format_instant(rt.clock.now())
    refs = {"opportunitySlug": rt.ids.slug("opp_"),
            "vehicleSlug": rt.ids.fresh("veh_", lambda s: _spv_row(rt, s) is not None),
            "spSlug": rt.ids.slug("sp_"), "spcSlug": rt.ids.slug("spc_")}
    attributes = loads(row["attributes"])
    share_classes = rt.contracts.materialise_share_classes(attributes)
    rt.store.run(
        "UPDATE spv_requests SET status = 'approved', approved_at = ?, updated_at = ?, materialised_refs = ?, "
        "fees_and_carry = ? WHERE slug = ?", now, now, dumps(refs), dumps({"shareClasses": share_classes}), slug,
    )
    rt.store.run(
        "INSERT INTO spvs (vehicle_slug, client_id, spv_request_slug, currency, share_classes) VALUES (?, ?, ?, ?, ?)",
        refs["vehicleSlug"], row["client_id"], slug, attributes.get("currency", ""), dumps(share_classes),
    )
    return _emit_and_read(rt, row["client_id"], slug, "spv_request.completed")


def reject(rt: Runtime, slug: str, reason: str) -> SpvRequestResponse:
    row = _require_pending(_any_row(rt, slug), "rejected")
    now = format_instant(rt.clock.now())
    rt.store.run(
        "UPDATE spv_requests SET status = 'rejected', rejected_at = ?, updated_at = ?, rejection_reason = ? "
        "WHERE slug = ?", now, now, reason, slug,
    )
    return _emit_and_read(rt, row["client_id"], slug, "spv_request.rejected")


def admin_list(rt: Runtime, status: str | None, client_id: str | None, limit: int) -> list[SpvRequestResponse]:
    """Every partner's SPV requests, as the Zest admin reviews them: the latest ``limit``, oldest first."""
    rows = rt.store.all(f"{_SELECT} WHERE (? IS NULL OR r.status = ?) AND (? IS NULL OR r.client_id = ?) "
                        "ORDER BY r.seq DESC LIMIT ?", status, status, client_id, client_id, limit)
    return [to_response(r) for r in _with_tenants(rt, list(reversed(rows)))]


def find_spv(rt: Runtime, vehicle_slug: str, client_id: str) -> Row | None:
    """An approved request's SPV (vehicle slug, currency, share classes), if ``client_id`` may see it."""
    row = _spv_row(rt, vehicle_slug)
    return row if row is not None and row["client_id"] == client_id else None


def summary(rt: Runtime) -> list[Row]:
    """(client_id, slug, status) of every request, oldest first, for the state summary."""
    return rt.store.all("SELECT client_id, slug, status FROM spv_requests ORDER BY seq")


def spv_summary(rt: Runtime) -> list[Row]:
    return rt.store.all("SELECT client_id, vehicle_slug, spv_request_slug FROM spvs ORDER BY rowid")


def _spv_row(rt: Runtime, vehicle_slug: str) -> Row | None:
    return rt.store.one("SELECT * FROM spvs WHERE vehicle_slug = ?", vehicle_slug)


def _exists(rt: Runtime, slug: str) -> bool:
    return rt.store.one("SELECT 1 FROM spv_requests WHERE slug = ?", slug) is not None


def _with_tenant(rt: Runtime, row: Row) -> Row:
    """The row with its partner's tenant slug, which responses and events carry."""
    return _with_tenants(rt, [row])[0]


def _with_tenants(rt: Runtime, rows: list[Row]) -> list[Row]:
    """``_with_tenant`` for many rows, reading each partner once."""
    tenants = {c: partners.get(rt.store, c).tenant_slug for c in {r["client_id"] for r in rows}}
    return [{**row, "tenant_slug": tenants[row["client_id"]]} for row in rows]


def status_of(rt: Runtime, slug: str) -> str | None:
    row = rt.store.one("SELECT status FROM spv_requests WHERE slug = ?", slug)
    return row["status"] if row else None


def to_response(row: Row) -> SpvRequestResponse:
    fields: dict[str, Any] = {
        "spvRequestSlug": row["slug"], "status": row["status"], "templateId": row["template_id"],
        "templateVersion": row["template_version"], "tenantSlug": row["tenant_slug"], "clientId": row["client_id"],
        "attributes": loads(row["attributes"]), "createdAt": row["created_at"], "updatedAt": row["updated_at"],
        "rejectionReason": row["rejection_reason"], "cancelledAt": row["cancelled_at"],
        "approvedAt": row["approved_at"], "materialisedRefs": loads(row["materialised_refs"]),
        "feesAndCarry": loads(row["fees_and_carry"]),
    }
    return SpvRequestResponse.model_validate(fields)


def _emit_and_read(rt: Runtime, client_id: str, slug: str, event_type: str) -> SpvRequestResponse:
    row = _row(rt, client_id, slug)
    events.emit(rt.store, rt.ids, client_id, event_type, events.spv_request_data(row), rt.clock.now())
    return to_response(row)


def _row(rt: Runtime, client_id: str, slug: str) -> Row:
    return _with_tenant(rt, _own_row(rt, client_id, slug))


def _own_row(rt: Runtime, client_id: str, slug: str) -> Row:
    row = rt.store.one(f"{_SELECT} WHERE r.slug = ? AND r.client_id = ?", slug, client_id)
    if row is None:
        raise NotFound(f"SPV request {slug!r} does not exist or is not visible to this client")
    return row


def _any_row(rt: Runtime, slug: str) -> Row:
    row = rt.store.one(f"{_SELECT} WHERE r.slug = ?", slug)
    if row is None:
        raise NotFound(f"SPV request {slug!r} does not exist")
    return _with_tenant(rt, row)


def _require_pending(row: Row, target: str) -> Row:
    if row["status"] != PENDING:
        raise Conflict(f"SPV request {row['slug']} is {row['status']}; only a pending-review request can be {target}")
    return row
