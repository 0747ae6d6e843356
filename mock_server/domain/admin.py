"""The simulated admin's actions as scheduled jobs: review, completion, and the 60-second reconciler sweep.

Each job removes itself (``scheduler.finish``) in the transaction that records its decision, so a crash never
repeats or loses one. ``subscription.completed`` is emitted once per Bid whatever path completes it:
synchronously, or by the next reconciler sweep when the admin's synchronous emit was skipped.
"""

from __future__ import annotations

from mock_server.domain import policy, spv_requests, subscriptions
from mock_server.runtime import Runtime
from mock_server.scheduler import Job, finish


def complete_subscription(rt: Runtime, subscription_slug: str, emit: str) -> None:
    """The admin completes a Bid; with ``emit="reconciler"`` the next reconciler sweep emits the event."""
    subscriptions.complete(rt, subscription_slug, emit=emit == "sync")
    if emit == "reconciler":
        policy.schedule_reconciler(rt)


async def run_review(rt: Runtime, job: Job) -> dict[str, object]:
    slug = job.payload["spvRequestSlug"]
    with rt.store.tx():
        if spv_requests.status_of(rt, slug) != spv_requests.PENDING:
            return {"outcome": "skipped: no longer pending"}
        if job.payload["decision"] == "approve":
            spv_requests.approve(rt, slug)
        else:
            spv_requests.reject(rt, slug, job.payload["reason"])
        finish(rt.store, job)
    return {"outcome": job.payload["decision"]}


async def run_completion(rt: Runtime, job: Job) -> dict[str, object]:
    slug = job.payload["subscriptionSlug"]
    with rt.store.tx():
        if subscriptions.status_of(rt, slug) != "funded":
            return {"outcome": "skipped: not funded"}
        complete_subscription(rt, slug, job.payload["emit"])
        finish(rt.store, job)
    return {"outcome": "completed"}


async def run_reconciler(rt: Runtime, job: Job) -> dict[str, object]:
    with rt.store.tx():
        emitted = [slug for slug in subscriptions.unemitted_completions(rt) if subscriptions.emit_completion(rt, slug)]
        finish(rt.store, job)
    return {"emitted": emitted}
