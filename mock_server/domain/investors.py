"""Investor bulk onboarding: always a per-row answer, deduplicated on (client_id, partnerInvestorId).

Unknown row fields are dropped and listed in ``ignored`` when the caller passes one (else they fail the row).
A bad row fails alone (``failed`` with a row error), a known partnerInvestorId answers ``already_exists`` with the
original person id and leaves the record untouched, and only ``created`` rows emit ``investor.created``.
A ``RowFaultPlan`` (from a fired ``fail_rows`` fault rule) fails the valid rows it picks: ``internal_error``
(retryable), optionally after the person was written, or a field-level ``validation_error``. Each row's outcome
(``RowOutcome``) carries what the journal keeps to follow a partnerInvestorId across attempts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mock_server.clock import format_instant
from mock_server.domain.idempotency import body_hash
from mock_server.domain.partners import Partner
from mock_server.domain.row_faults import RowFault, RowFaultPlan
from mock_server.errors import FieldError, ValidationFailed
from mock_server.models import InvestorBulkResponse, InvestorCreateRow, InvestorRowError, InvestorRowResult
from mock_server.runtime import Runtime
from mock_server.store import Row
from mock_server.validation import parse_model
from mock_server.webhooks import events


@dataclass(frozen=True, slots=True)
class RowOutcome:
    """One row's answer, with the hash of the row as sent (to tell an unchanged resubmission) and the label of
    the fault rule that failed it, if one did."""

    index: int
    row_hash: str
    result: InvestorRowResult
    fault: str | None = None


@dataclass(frozen=True, slots=True)
class BulkCreated:
    outcomes: tuple[RowOutcome, ...]

    @property
    def response(self) -> InvestorBulkResponse:
        return InvestorBulkResponse(results=[outcome.result for outcome in self.outcomes])


def bulk_create(rt: Runtime, partner: Partner, rows: list[Any], row_faults: RowFaultPlan | None = None,
                ignored: list[str] | None = None) -> BulkCreated:
    seen: set[str] = set()
    return BulkCreated(tuple(_one(rt, partner, index, row, seen, row_faults, ignored)
                             for index, row in enumerate(rows)))


def replayed(rows: list[Any], stored: bytes) -> tuple[RowOutcome, ...]:
    """The outcomes of a replayed answer (an Idempotency-Key seen before): the stored rows, answered again."""
    results = InvestorBulkResponse.model_validate_json(stored).results
    return tuple(RowOutcome(index, body_hash(raw), result)
                 for index, (raw, result) in enumerate(zip(rows, results, strict=True)))


def _one(rt: Runtime, partner: Partner, index: int, raw: Any, seen: set[str],
         row_faults: RowFaultPlan | None, ignored: list[str] | None) -> RowOutcome:
    partner_id = raw.get("partnerInvestorId") if isinstance(raw, dict) else None
    label = partner_id if isinstance(partner_id, str) else ""
    row_hash = body_hash(raw)
    try:
        row = parse_model(InvestorCreateRow, raw, f"investors[{index}]", ignored=ignored)
    except ValidationFailed as exc:
        return RowOutcome(index, row_hash, _failed(label, "validation_error", exc.field_errors[0]))
    if row.partnerInvestorId in seen:
        return RowOutcome(index, row_hash, _failed(label, "duplicate_in_batch", FieldError(
            f"investors[{index}].partnerInvestorId", "duplicate_in_batch",
            f"partnerInvestorId {row.partnerInvestorId!r} appears earlier in this request")))
    seen.add(row.partnerInvestorId)
    fault = row_faults.fault_for(index, row.partnerInvestorId, rt.ids.fault_draw) if row_faults else None
    if fault is not None and row_faults is not None:
        return RowOutcome(index, row_hash, _injected(rt, partner, index, row, fault, row_faults.label),
                          row_faults.label)
    existing = _existing(rt, partner, row.partnerInvestorId)
    if existing:
        return RowOutcome(index, row_hash, InvestorRowResult(
            partnerInvestorId=row.partnerInvestorId, status="already_exists", zestPersonId=existing))
    return RowOutcome(index, row_hash, _insert(rt, partner, row))


def _existing(rt: Runtime, partner: Partner, partner_investor_id: str) -> str | None:
    row = rt.store.one("SELECT person_id FROM investors WHERE client_id = ? AND partner_investor_id = ?",
                       partner.client_id, partner_investor_id)
    return str(row["person_id"]) if row else None


def _injected(rt: Runtime, partner: Partner, index: int, row: InvestorCreateRow, fault: RowFault,
              label: str) -> InvestorRowResult:
    """A row failed by a fault rule. ``created`` means both of Zest's writes succeeded: with ``afterWrite`` the
    first (the person) did and the second did not, so no investor.created; a retry then finds the person."""
    message = fault.describe(label)
    if fault.error == "validation_error":
        return _failed(row.partnerInvestorId, "validation_error",
                       FieldError(f"investors[{index}].{fault.field}", "validation_error", message))
    if fault.afterWrite and _existing(rt, partner, row.partnerInvestorId) is None:
        _write_person(rt, partner, row)
    return InvestorRowResult(partnerInvestorId=row.partnerInvestorId, status="failed", error=InvestorRowError(
        code="internal_error", message=message, retryable=True))


def _insert(rt: Runtime, partner: Partner, row: InvestorCreateRow) -> InvestorRowResult:
    stored = _write_person(rt, partner, row)
    events.emit(rt.store, rt.ids, partner.client_id, "investor.created", events.investor_data(stored), rt.clock.now())
    return InvestorRowResult(partnerInvestorId=row.partnerInvestorId, status="created",
                             zestPersonId=stored["person_id"])


def _write_person(rt: Runtime, partner: Partner, row: InvestorCreateRow) -> Row:
    stored: Row = {
        "person_id": rt.ids.fresh("psn_", lambda p: _taken(rt, p)), "client_id": partner.client_id,
        "partner_investor_id": row.partnerInvestorId, "email": row.email, "first_name": row.firstName,
        "last_name": row.lastName, "date_of_birth": row.dateOfBirth, "country_of_residence": row.countryOfResidence,
        "created_at": format_instant(rt.clock.now()),
    }
    rt.store.run(  # the row as stored (every column is text): not read back
        "INSERT INTO investors (person_id, client_id, partner_investor_id, email, first_name, last_name, "
        "date_of_birth, country_of_residence, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", *stored.values(),
    )
    return stored


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


def _taken(rt: Runtime, person_id: str) -> bool:
    return rt.store.one("SELECT 1 FROM investors WHERE person_id = ?", person_id) is not None


def _person(rt: Runtime, person_id: str) -> Row | None:
    return rt.store.one("SELECT * FROM investors WHERE person_id = ?", person_id)


def _failed(partner_investor_id: str, code: str, error: FieldError) -> InvestorRowResult:
    return InvestorRowResult(
        partnerInvestorId=partner_investor_id, status="failed",
        error=InvestorRowError(code=code, field=error.path, message=error.message, retryable=False),
    )
