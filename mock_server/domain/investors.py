"""Investor bulk onboarding: always a per-row answer, deduplicated on (client_id, partnerInvestorId).

A bad row fails alone (``failed`` with a row error), a known partnerInvestorId answers ``already_exists`` with the
original person id and leaves the record untouched, and only ``created`` rows emit ``investor.created``.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from mock_server.clock import format_instant
from mock_server.domain.partners import Partner
from mock_server.errors import FieldError
from mock_server.models import InvestorBulkResponse, InvestorCreateRow, InvestorRowError, InvestorRowResult
from mock_server.runtime import Runtime
from mock_server.store import Row
from mock_server.validation import field_errors
from mock_server.webhooks import events


def bulk_create(rt: Runtime, partner: Partner, rows: list[Any]) -> InvestorBulkResponse:
    seen: set[str] = set()
    results = [_one(rt, partner, index, row, seen) for index, row in enumerate(rows)]
    return InvestorBulkResponse(results=results)


def _one(rt: Runtime, partner: Partner, index: int, raw: Any, seen: set[str]) -> InvestorRowResult:
    partner_id = raw.get("partnerInvestorId") if isinstance(raw, dict) else None
    label = partner_id if isinstance(partner_id, str) else ""
    try:
        row = InvestorCreateRow.model_validate(raw)
    except ValidationError as exc:
        return _failed(label, "validation_error", field_errors(exc, f"investors[{index}]")[0])
    if row.partnerInvestorId in seen:
        return _failed(label, "duplicate_in_batch", FieldError(
            f"investors[{index}].partnerInvestorId", "duplicate_in_batch",
            f"partnerInvestorId {row.partnerInvestorId!r} appears earlier in this request"))
    seen.add(row.partnerInvestorId)
    existing = rt.store.one("SELECT person_id FROM investors WHERE client_id = ? AND partner_investor_id = ?",
                            partner.client_id, row.partnerInvestorId)
    if existing:
        return InvestorRowResult(partnerInvestorId=row.partnerInvestorId, status="already_exists",
                                 zestPersonId=existing["person_id"])
    return _insert(rt, partner, row)


def _insert(rt: Runtime, partner: Partner, row: InvestorCreateRow) -> InvestorRowResult:
    person_id = rt.ids.fresh("psn_", lambda p: _person(rt, p) is not None)
    rt.store.run(
        "INSERT INTO investors (person_id, client_id, partner_investor_id, email, first_name, last_name, "
        "date_of_birth, country_of_residence, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        person_id, partner.client_id, row.partnerInvestorId, row.email, row.firstName, row.lastName,
        row.dateOfBirth, row.countryOfResidence, format_instant(rt.clock.now()),
    )
    stored = _person(rt, person_id)
    assert stored is not None
    events.emit(rt.store, rt.ids, partner.client_id, "investor.created", events.investor_data(stored), rt.clock.now())
    return InvestorRowResult(partnerInvestorId=row.partnerInvestorId, status="created", zestPersonId=person_id)


def exists(rt: Runtime, client_id: str, person_id: str) -> bool:
    """Whether ``person_id`` is one of ``client_id``'s investors."""
    person = _person(rt, person_id)
    return person is not None and person["client_id"] == client_id


def partner_investor_id(rt: Runtime, client_id: str, person_id: str) -> str | None:
    person = _person(rt, person_id)
    return person["partner_investor_id"] if person is not None and person["client_id"] == client_id else None


def summary(rt: Runtime) -> list[Row]:
    """(client_id, person_id, partner_investor_id) of every investor, oldest first, for the state summary."""
    return rt.store.all("SELECT client_id, person_id, partner_investor_id FROM investors ORDER BY rowid")


def _person(rt: Runtime, person_id: str) -> Row | None:
    return rt.store.one("SELECT * FROM investors WHERE person_id = ?", person_id)


def _failed(partner_investor_id: str, code: str, error: FieldError) -> InvestorRowResult:
    return InvestorRowResult(
        partnerInvestorId=partner_investor_id, status="failed",
        error=InvestorRowError(code=code, field=error.path, message=error.message, retryable=False),
    )
