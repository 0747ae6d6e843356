"""Webhook chaos per partner: what the dispatcher does to prove a receiver survives real-world delivery.

``duplicate`` delivers every event twice (same eventId and body); ``reorderWindowSeconds`` holds first attempts
for a window and then delivers them one by one in a seeded shuffled order; ``failAttempts`` counts the first N
attempts of every delivery as failed without calling the receiver; ``tamperShare`` sends, beside that share of
events, one extra copy with a bad signature or a stale ``t`` that a correct receiver must refuse with a 4xx.
"""

from __future__ import annotations

import functools
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mock_server.domain import partners
from mock_server.store import Store

TamperKind = Literal["bad_signature", "stale_timestamp"]


class WebhookChaos(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    duplicate: bool = False
    reorderWindowSeconds: float | None = Field(default=None, gt=0, le=86400)
    failAttempts: int = Field(default=0, ge=0, le=6)
    tamperShare: float = Field(default=0.0, ge=0, le=1)
    tamperKinds: list[TamperKind] = Field(default=["bad_signature", "stale_timestamp"], min_length=1)


def load_chaos(store: Store, client_id: str) -> WebhookChaos:
    return parse_chaos(partners.chaos(store, client_id))


@functools.lru_cache(maxsize=256)
def parse_chaos(raw: str | None) -> WebhookChaos:
    """Settings from their stored JSON (parsed once per distinct value: every delivery attempt reads them)."""
    return WebhookChaos.model_validate_json(raw) if raw else WebhookChaos()


def store_chaos(store: Store, client_id: str, chaos: WebhookChaos) -> WebhookChaos:
    partners.set_chaos(store, client_id, chaos.model_dump_json())
    return chaos
