"""Seeded id generation: every id, secret and errorId the mock makes comes from here."""

from __future__ import annotations

import os
import random
import string
import uuid
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_ALPHABET = string.ascii_lowercase + string.digits


class IdGenerator:
    """Draws ids from one ``random.Random``; the same seed gives the same ids in the same order."""

    def __init__(self, seed: int | None = None) -> None:
        self.reseed(seed)

    def reseed(self, seed: int | None) -> None:
        self.seed = seed if seed is not None else int.from_bytes(os.urandom(4), "big")
        self._rng = random.Random(self.seed)
        # Fault decisions draw from their own stream, so injecting a fault never shifts the ids that follow; ids the
        # partner never sends back (errorIds, delivery ids) have another, so errors and background redeliveries in
        # a racy order never shift the resource ids either.
        self._fault_rng = random.Random(f"faults:{self.seed}")
        self._internal_rng = random.Random(f"internal:{self.seed}")

    def slug(self, prefix: str, length: int = 10) -> str:
        """``svr_k3j9x0a2bq``-style: prefix + lowercase alphanumerics."""
        return prefix + "".join(self._rng.choices(_ALPHABET, k=length))

    def fresh(self, prefix: str, taken: Callable[[str], bool], length: int = 10) -> str:
        """A slug that ``taken`` says is not in use yet: after a reseed on live state, the stream replays ids that
        exist, and those are drawn again (on fresh state nothing is taken, so the same seed gives the same ids)."""
        while taken(value := self.slug(prefix, length)):
            pass
        return value

    def fresh_hex(self, prefix: str, nbytes: int, taken: Callable[[str], bool]) -> str:
        while taken(value := self.hex(prefix, nbytes)):
            pass
        return value

    def hex(self, prefix: str, nbytes: int) -> str:
        return prefix + self._rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()

    def error_id(self) -> str:
        """The errorId of an error envelope (UUID v4)."""
        return str(uuid.UUID(int=self._internal_rng.getrandbits(128), version=4))

    def delivery_id(self, taken: Callable[[str], bool]) -> str:
        while taken(value := "dlv_" + "".join(self._internal_rng.choices(_ALPHABET, k=12))):
            pass
        return value

    def fault_draw(self) -> float:
        """A seeded draw in [0, 1) for fault probabilities and webhook chaos."""
        return self._fault_rng.random()

    def fault_uuid4(self) -> str:
        """An errorId for an injected fault, from the fault stream (so it shifts no ids either)."""
        return str(uuid.UUID(int=self._fault_rng.getrandbits(128), version=4))

    def shuffle(self, items: list[T]) -> list[T]:
        """A seeded shuffle (webhook reordering)."""
        shuffled = list(items)
        self._fault_rng.shuffle(shuffled)
        return shuffled
