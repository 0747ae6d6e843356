"""Wire models of the Partner API: request bodies and responses.

Class names are the published schema component names, so the served ``/openapi.json`` lines up with the published
document. Field names are the camelCase wire names. Request bodies are closed (``extra="forbid"``) and strict
(no ``1`` for ``"1"``): a mock that is stricter than Zest fails a partner early, one that is looser fails them late.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_null(cls, value: Any) -> Any:
        # An optional field is absent or typed, never null (the served schema has no null anywhere).
        if value is None:
            raise PydanticCustomError("null_type", "null is not allowed here; leave the field out instead")
        return value


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SpvRequestStatus(StrEnum):
    PENDING_REVIEW = "pending-review"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


# A calendar date as YYYY-MM-DD in ASCII digits, year 0001 to 9999 (Python has no year 0); `format: date` and the
# validator below add the month lengths.
_YEAR = r"([0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"
_DATE = "^" + _YEAR + r"-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"


class Money(_Request):
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["USD"])
    value: str = Field(pattern=r"^[0-9]{1,15}(\.[0-9]{1,2})?$", examples=["50000.00"])  # ASCII digits only


class SpvRequestCreate(_Request):
    templateId: str = Field(min_length=1, max_length=200, examples=["syndicate_secondary"])
    templateVersion: str = Field(min_length=1, max_length=50, examples=["1.0.0"])
    attributes: dict[str, Any] = Field(
        description="Checked against the template named by templateId and templateVersion.",
        examples=[{
            "underlyingCompanySlug": "co_acme",
            "currency": "USD",
            "shareClasses": [{"name": "Class A", "managementFeePercent": "2.0", "carryPercent": "20.0"}],
        }],
    )


class MaterialisedRefsResponse(_Response):
    opportunitySlug: str
    vehicleSlug: str
    spSlug: str
    spcSlug: str


class ShareClassFeesAndCarry(_Response):
    name: str
    slug: str
    managementFeePercent: str | None = None
    carryPercent: str | None = None
    setupFee: dict[str, Any] | None = None


class FeesAndCarryResponse(_Response):
    shareClasses: list[ShareClassFeesAndCarry] = []


class SpvRequestResponse(_Response):
    spvRequestSlug: str
    status: SpvRequestStatus
    templateId: str
    templateVersion: str
    tenantSlug: str
    clientId: str
    attributes: dict[str, Any]
    rejectionReason: str | None = None
    cancelledAt: str | None = Field(default=None, json_schema_extra={"format": "date-time"})
    approvedAt: str | None = Field(default=None, json_schema_extra={"format": "date-time"})
    materialisedRefs: MaterialisedRefsResponse | None = None
    feesAndCarry: FeesAndCarryResponse | None = None
    createdAt: str = Field(json_schema_extra={"format": "date-time"})
    updatedAt: str = Field(json_schema_extra={"format": "date-time"})


class AggregationResponse(_Response):
    documents: list[SpvRequestResponse]
    count: int = 0
    skip: int = 0
    limit: int = 10


class InvestorBulkCreate(_Request):
    # Rows are validated one by one (a bad row never fails the batch), so they arrive untyped here.
    investors: list[Any] = Field(
        max_length=500, json_schema_extra={"items": {"$ref": "#/components/schemas/InvestorCreateRow"}}
    )


class InvestorCreateRow(_Request):
    partnerInvestorId: str = Field(min_length=1, max_length=200, examples=["acme-inv-7341"])
    # `\s` means other characters to pydantic's regex engine than to JSON Schema's (U+0085, U+FEFF), so spell it out.
    email: str = Field(pattern=r"^[^@ \t\n\r\f\v]+@[^@ \t\n\r\f\v]+\.[^@ \t\n\r\f\v]+$", max_length=320,
                       examples=["alice@example.com"])
    firstName: str = Field(min_length=1, max_length=200, examples=["Alice"])
    lastName: str = Field(min_length=1, max_length=200, examples=["Liddell"])
    dateOfBirth: str = Field(pattern=_DATE, examples=["1985-04-12"], json_schema_extra={"format": "date"})
    countryOfResidence: str | None = Field(default=None, pattern=r"^[A-Z]{2}$", examples=["AE"])

    @field_validator("dateOfBirth")
    @classmethod
    def _real_date(cls, value: str) -> str:
        date.fromisoformat(value)  # 1985-02-30 fails here as a ValueError -> `format`
        return value


class InvestorRowError(_Response):
    code: str
    field: str | None = None
    message: str
    retryable: bool


class InvestorRowResult(_Response):
    partnerInvestorId: str
    status: Literal["created", "already_exists", "failed"]
    zestPersonId: str | None = None
    error: InvestorRowError | None = None


class InvestorBulkResponse(_Response):
    results: list[InvestorRowResult]


class SubscriptionCreateRow(_Request):
    partnerSubscriptionId: str | None = Field(default=None, min_length=1, max_length=200, examples=["acme-sub-9921"])
    zestPersonId: str = Field(min_length=1, max_length=100, examples=["psn_abc123"])
    lumpSum: Money
    shareClassSlug: str = Field(min_length=1, max_length=100, examples=["sc_classA"])


class SubscriptionBulkCreate(_Request):
    subscriptions: list[SubscriptionCreateRow] = Field(min_length=1, max_length=100)


class SubscriptionResult(_Response):
    partnerSubscriptionId: str | None = None
    subscriptionSlug: str
    spvSlug: str
    personId: str
    status: str
    lumpSum: dict[str, Any]
    shareClassSlug: str


class SubscriptionBulkResponse(_Response):
    results: list[SubscriptionResult]


class FormUploadResponse(_Response):
    subscriptionSlug: str
    spvSlug: str
    personId: str
    subscriptionFormUrl: str
    uploadedAt: str = Field(json_schema_extra={"format": "date-time"})


class FundingUploadResponse(_Response):
    subscriptionSlug: str
    spvSlug: str
    personId: str
    fundingReceiptUrl: str
    amount: str
    currency: str
    wireReference: str
    uploadedAt: str = Field(json_schema_extra={"format": "date-time"})


class TokenResponse(_Response):
    accessToken: str
    tokenType: Literal["Bearer"] = "Bearer"
    expiresIn: int
    refreshToken: str | None = None


class InfoResponse(_Response):
    clientType: Literal["service", "user", "application"]
    clientId: str
    metadata: dict[str, Any] | None = None


class PartnerValidationError(BaseModel):
    attribute: str
    field: str | None = None
    code: str
    message: str
    value: Any = None


class PartnerErrorResponse(BaseModel):
    code: str
    detail: str
    errorId: str
    validationErrors: list[PartnerValidationError] | None = None


def dump(model: BaseModel) -> dict[str, Any]:
    """Wire form of a response model: optional keys absent rather than null."""
    return model.model_dump(mode="json", exclude_none=True)
