"""The simulated admin's policy: how and when SPV requests are reviewed and funded subscriptions completed.

The policy is read when a request is created or a funding receipt lands, and schedules the admin's action then;
``domain.admin`` runs those actions when they fall due.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mock_server.clock import format_instant
from mock_server.runtime import Runtime
from mock_server.scheduler import exists, schedule

RECONCILER_PERIOD_SECONDS = 60
_KEY = "admin_policy"


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SpvReviewPolicy(_Closed):
    decision: Literal["approve", "reject", "manual"] = "manual"
    after: float = Field(default=0, ge=0, le=10 * 365 * 86400, description="Seconds after creation")
    reason: str = Field(default="Rejected by the simulated admin policy", min_length=1, max_length=2000)


class CompletionPolicy(_Closed):
    decision: Literal["complete", "manual"] = "manual"
    after: float = Field(default=0, ge=0, le=10 * 365 * 86400, description="Seconds after the funding upload")
    emit: Literal["sync", "reconciler"] = "sync"


class AdminPolicy(_Closed):
    spvReview: SpvReviewPolicy = SpvReviewPolicy()
    subscriptionCompletion: CompletionPolicy = CompletionPolicy()


PRESETS = {
    "manual": AdminPolicy(),
    "demo": AdminPolicy(spvReview=SpvReviewPolicy(decision="approve", after=60),
                        subscriptionCompletion=CompletionPolicy(decision="complete", after=60)),
}


def parse(text: str) -> AdminPolicy:
    """A preset name (``manual``, ``demo``) or a policy as JSON."""
    if text in PRESETS:
        return PRESETS[text]
    try:
        return AdminPolicy.model_validate_json(text)
    except ValueError as exc:
        raise ValueError(f"admin policy must be one of {', '.join(PRESETS)} or a JSON policy: {exc}") from exc


def current(rt: Runtime) -> AdminPolicy:
    raw = rt.store.get_meta(_KEY)
    return _stored(raw) if raw else PRESETS["manual"]


@functools.lru_cache(maxsize=16)
def _stored(raw: str) -> AdminPolicy:
    """The policy kept in ``meta``, parsed once per distinct text (each SPV create and funding upload reads it)."""
    return AdminPolicy.model_validate_json(raw)


def set_policy(rt: Runtime, policy: AdminPolicy) -> AdminPolicy:
    rt.store.set_meta(_KEY, policy.model_dump_json())
    return policy


def after_spv_request_created(rt: Runtime, slug: str) -> None:
    review = current(rt).spvReview
    if review.decision != "manual":
        due = rt.clock.now() + timedelta(seconds=review.after)
        reason = {"reason": review.reason} if review.decision == "reject" else {}  # an approval has no reason
        schedule(rt.store, "admin_review", due, {"spvRequestSlug": slug, "decision": review.decision, **reason},
                 key=slug)


def after_funding_uploaded(rt: Runtime, subscription_slug: str) -> None:
    completion = current(rt).subscriptionCompletion
    if completion.decision == "complete":
        due = rt.clock.now() + timedelta(seconds=completion.after)
        schedule(rt.store, "admin_complete", due, {"subscriptionSlug": subscription_slug, "emit": completion.emit},
                 key=subscription_slug)


def schedule_reconciler(rt: Runtime) -> None:
    """Make sure a reconciler sweep is due at the next 60-second boundary of simulated time."""
    sweep = _next_sweep(rt.clock.now())
    if not exists(rt.store, "reconcile", "", sweep):
        schedule(rt.store, "reconcile", sweep)


def _next_sweep(now: datetime) -> str:
    epoch = int(now.timestamp())
    return format_instant(datetime.fromtimestamp(epoch - epoch % RECONCILER_PERIOD_SECONDS
                                                 + RECONCILER_PERIOD_SECONDS, UTC))
