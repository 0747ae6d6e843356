"""Replayed assertions: the ``used_assertions`` table (the jtis partners already exchanged) is owned here.

Off by default, as the reference decides; with ``reject_replayed_assertions`` (``serve --reject-replayed-assertions``)
an assertion must carry a ``jti``, and one whose partner already exchanged the same ``jti`` is refused while that
jti is remembered: until its ``exp`` plus the leeway has passed on both the simulated and the wall clock, since an
assertion is accepted when it fits either. Expired rows are purged on every check, so the table holds at most the
assertions still inside their (at most 300 s) lifetimes.
"""

from __future__ import annotations

from typing import Any

from mock_server.clock import Clock
from mock_server.errors import InvalidToken
from mock_server.settings import Settings
from mock_server.store import Store

MAX_JTI_CHARS = 256


def check_and_remember(store: Store, clock: Clock, settings: Settings, client_id: str, claims: dict[str, Any]) -> None:
    """Refuse a replayed ``jti`` (when replays are refused at all), else remember it until it expires."""
    if not settings.reject_replayed_assertions:
        return
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_CHARS:
        raise InvalidToken(f"assertion must carry a jti (a string of 1..{MAX_JTI_CHARS} characters): this mock "
                           "refuses replayed assertions")
    horizon = min(clock.now().timestamp(), clock.wall_time()) - settings.jwt_leeway_seconds
    with store.tx():
        store.run("DELETE FROM used_assertions WHERE exp < ?", horizon)
        if store.one("SELECT 1 FROM used_assertions WHERE client_id = ? AND jti = ?", client_id, jti):
            raise InvalidToken("assertion jti was already exchanged: sign a fresh assertion with a new jti")
        store.run("INSERT INTO used_assertions (client_id, jti, exp) VALUES (?, ?, ?)", client_id, jti,
                  float(claims["exp"]))
