"""Row-level faults of bulk investor onboarding: which rows of a batch a ``fail_rows`` rule fails, and how.

A ``RowFault`` picks rows by position, by ``partnerInvestorId`` (a glob or a regular expression) or by a seeded
share, and says how a picked row fails: ``internal_error`` (retryable; with ``afterWrite`` the person is written
first, so a retry answers ``already_exists`` with its id) or a field-level ``validation_error`` (not retryable).
When a ``fail_rows`` rule fires, the fault layer hands the bulk create a ``RowFaultPlan``: the rule's journal label
and its row faults, of which the first that picks a row decides it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

RowError = Literal["internal_error", "validation_error"]
RowField = Literal["email", "firstName", "lastName", "dateOfBirth", "countryOfResidence"]
MAX_ROW_INDEX = 499  # the bulk endpoint takes at most 500 rows


class RowFault(BaseModel):
    """Which rows fail (any selector picks a row) and how they fail."""

    model_config = ConfigDict(extra="forbid", strict=True)
    indexes: list[Annotated[int, Field(ge=0, le=MAX_ROW_INDEX)]] = Field(
        default=[], max_length=500, description="Positions of the rows in the batch, from 0")
    partnerInvestorId: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="A glob the whole partnerInvestorId matches (`*` any run of characters, `?` one character)")
    partnerInvestorIdRegex: str | None = Field(
        default=None, min_length=1, max_length=500,
        description="A regular expression the whole partnerInvestorId matches")
    share: float | None = Field(
        default=None, gt=0, le=1,
        description="Each row not picked otherwise fails with this probability, drawn from the seeded fault stream")
    error: RowError = Field(
        default="internal_error",
        description="internal_error (retryable: true) or a field-level validation_error (retryable: false)")
    afterWrite: bool = Field(
        default=False,
        description="internal_error only: the person is written before the row fails, so a retry of the row "
                    "answers already_exists with its zestPersonId (and no investor.created is ever emitted for it)")
    field: RowField = Field(default="email", description="validation_error only: the field the error names")
    message: str | None = Field(default=None, min_length=1, max_length=500, description="The row error's message")

    @field_validator("partnerInvestorIdRegex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _coherent(self) -> RowFault:
        if not (self.indexes or self.partnerInvestorId or self.partnerInvestorIdRegex or self.share):
            raise ValueError("a row fault picks rows: give indexes, partnerInvestorId, partnerInvestorIdRegex or share")
        if self.afterWrite and self.error != "internal_error":
            raise ValueError("afterWrite belongs to internal_error (a validation_error never writes the person)")
        return self

    def picks(self, index: int, partner_investor_id: str, draw: Callable[[], float]) -> bool:
        """Whether this fault fails the row; ``draw`` is called only for a share, and only when nothing else
        picked the row, so the same batch under the same seed fails the same rows."""
        if index in self.indexes:
            return True
        if self.partnerInvestorId is not None and fnmatch.fnmatchcase(partner_investor_id, self.partnerInvestorId):
            return True
        if self.partnerInvestorIdRegex is not None and re.fullmatch(self.partnerInvestorIdRegex, partner_investor_id):
            return True
        return self.share is not None and draw() < self.share

    def describe(self, label: str) -> str:
        """The row error's message."""
        if self.message:
            return self.message
        if self.error == "validation_error":
            return f"{self.field} was not accepted (injected fault: {label})"
        written = ", after the person was written" if self.afterWrite else ""
        return f"the row could not be completed{written}; retry it (injected fault: {label})"


@dataclass(frozen=True, slots=True)
class RowFaultPlan:
    """What a fired ``fail_rows`` rule asks of one bulk create: its journal label and its row faults, in order."""

    label: str
    faults: tuple[RowFault, ...]

    def fault_for(self, index: int, partner_investor_id: str, draw: Callable[[], float]) -> RowFault | None:
        return next((fault for fault in self.faults if fault.picks(index, partner_investor_id, draw)), None)
