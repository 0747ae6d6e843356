"""Fault rules for the partner API: what to match, how often to fire, and what to do.

A rule matches on operationId, method, path pattern (``*`` wildcards) and client; it fires ``times`` times (or
always) with an optional probability drawn from the seeded fault stream, so the same seed gives the same decisions.
Rules are tried oldest first; the first that matches and fires wins. A ``fail_rows`` rule (bulkCreateInvestors only)
fails chosen rows of the batch rather than the request: ``Fired.row_plan`` is what it hands the bulk create.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mock_server.clock import format_instant
from mock_server.domain.row_faults import RowFault, RowFaultPlan
from mock_server.errors import NotFound
from mock_server.runtime import Runtime

Action = Literal["error", "error_after_commit", "drop_after_commit", "latency", "timeout", "drop", "fail_rows"]
ROW_FAULT_OPERATION = "bulkCreateInvestors"
DEFAULT_CODES = {400: "invalid_request", 401: "invalid_token", 403: "forbidden", 404: "not_found", 409: "conflict",
                 413: "payload_too_large", 415: "unsupported_media_type", 429: "rate_limited",
                 500: "internal_error", 502: "bad_gateway", 503: "service_unavailable", 504: "gateway_timeout"}


class FaultMatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    operationId: str | None = None
    method: str | None = Field(default=None, pattern=r"^[A-Za-z]+$")
    path: str | None = Field(default=None, description="Path pattern, `*` matches any run of characters")
    clientId: str | None = None


class FaultRule(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    match: FaultMatch = FaultMatch()
    action: Action
    times: int | None = Field(default=1, ge=1, description="How many times it fires; null for always")
    probability: float = Field(default=1.0, gt=0, le=1)
    status: int = Field(default=503, ge=400, le=599)
    code: str | None = None
    detail: str | None = None
    retryAfter: int | None = Field(default=None, ge=0, le=3600)
    latencyMs: int | None = Field(default=None, ge=0, le=120_000)
    latencyMaxMs: int | None = Field(default=None, ge=0, le=120_000)
    holdSeconds: float = Field(default=30.0, gt=0, le=600)
    rows: list[RowFault] | None = Field(
        default=None, min_length=1, max_length=20,
        description="fail_rows only: the row faults, tried in order; the first that picks a row decides how it fails")

    @model_validator(mode="after")
    def _coherent(self) -> FaultRule:
        if self.action == "latency" and self.latencyMs is None:
            raise ValueError("a latency fault needs latencyMs (and optionally latencyMaxMs for a range)")
        if self.latencyMaxMs is not None and (self.latencyMs is None or self.latencyMaxMs < self.latencyMs):
            raise ValueError("latencyMaxMs must be >= latencyMs")
        if self.action == "error_after_commit" and self.status < 500:
            raise ValueError("error_after_commit answers a 5xx (the write happened, the answer was lost)")
        if (self.action == "fail_rows") != (self.rows is not None):
            raise ValueError("a fail_rows rule needs rows (which rows fail, and how), and only fail_rows takes rows")
        if self.action == "fail_rows" and self.match.operationId != ROW_FAULT_OPERATION:
            raise ValueError(f"fail_rows fails rows of a bulk investor create: match operationId "
                             f"{ROW_FAULT_OPERATION!r}")
        return self

    def error_code(self) -> str:
        return self.code or DEFAULT_CODES.get(self.status, "internal_error")


@dataclass(frozen=True, slots=True)
class Fired:
    rule_id: int
    rule: FaultRule
    latency_ms: int = 0

    @property
    def label(self) -> str:
        return f"{self.rule.action}#{self.rule_id}"

    def row_plan(self) -> RowFaultPlan:
        return RowFaultPlan(self.label, tuple(self.rule.rows or ()))


def add(rt: Runtime, rule: FaultRule) -> dict[str, object]:
    rule_id = rt.store.run("INSERT INTO faults (rule, created_at) VALUES (?, ?)",
                           rule.model_dump_json(), format_instant(rt.clock.now()))
    return describe(rt, rule_id)


def describe(rt: Runtime, rule_id: int) -> dict[str, object]:
    row = rt.store.one("SELECT * FROM faults WHERE id = ?", rule_id)
    if row is None:
        raise NotFound(f"fault rule {rule_id} does not exist")
    rule = FaultRule.model_validate_json(row["rule"])
    remaining = None if rule.times is None else max(rule.times - row["fired"], 0)
    return {"id": row["id"], **rule.model_dump(exclude_none=True), "times": rule.times, "fired": row["fired"],
            "remaining": remaining, "createdAt": row["created_at"]}


def list_rules(rt: Runtime) -> list[dict[str, object]]:
    return [describe(rt, row["id"]) for row in rt.store.all("SELECT id FROM faults ORDER BY id")]


def remove(rt: Runtime, rule_id: int) -> dict[str, object]:
    removed = describe(rt, rule_id)  # 404 for an unknown id
    rt.store.run("DELETE FROM faults WHERE id = ?", rule_id)
    return removed


def any_rules(rt: Runtime) -> bool:
    """Whether any rule is set (the common answer, no, costs one indexed read per request)."""
    return rt.store.one("SELECT 1 FROM faults LIMIT 1") is not None


def clear(rt: Runtime) -> int:
    return int(rt.store.conn.execute("DELETE FROM faults").rowcount)


def pick(rt: Runtime, operation_id: str | None, method: str, path: str, client_id: str | None) -> Fired | None:
    """The rule that fires for this request, if any (its fired count is taken)."""
    for row in rt.store.all("SELECT * FROM faults ORDER BY id"):
        rule = FaultRule.model_validate_json(row["rule"])
        if rule.times is not None and row["fired"] >= rule.times:
            continue
        if not _matches(rule.match, operation_id, method, path, client_id):
            continue
        if rule.probability < 1 and rt.ids.fault_draw() >= rule.probability:
            continue
        rt.store.run("UPDATE faults SET fired = fired + 1 WHERE id = ?", row["id"])
        return Fired(row["id"], rule, _latency(rt, rule))
    return None


def _matches(m: FaultMatch, operation_id: str | None, method: str, path: str, client_id: str | None) -> bool:
    return (
        (m.operationId is None or m.operationId == operation_id)
        and (m.method is None or m.method.upper() == method.upper())
        and (m.path is None or fnmatch.fnmatchcase(path, m.path))
        and (m.clientId is None or m.clientId == client_id)
    )


def _latency(rt: Runtime, rule: FaultRule) -> int:
    if rule.latencyMs is None:
        return 0
    if rule.latencyMaxMs is None:
        return rule.latencyMs
    return rule.latencyMs + int(rt.ids.fault_draw() * (rule.latencyMaxMs - rule.latencyMs))
