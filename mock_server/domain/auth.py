"""Authentication: the RFC 7523 JWT-bearer exchange and bearer-token checks, all against the simulated clock.

Assertions must be EdDSA, signed by the partner's registered key, with ``aud`` exactly one of the accepted
audiences (the configured ``--audience``, else the base URL the exchange was called on or the mock's own),
``sub == client_id``, and ``iat``/``exp`` (and ``nbf`` when present) inside a small leeway of simulated now; with
``reject_replayed_assertions`` a ``jti`` may be exchanged once (``assertion_replay``). Access tokens are HS256 JWTs
signed with a per-instance secret, so they survive a restart with a state file and expire on simulated time.

PyJWT (and the cryptography it loads) is imported by the first call that needs it, not at start-up.
"""

from __future__ import annotations

import functools
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mock_server.clock import Clock
from mock_server.domain import assertion_replay, partners
from mock_server.domain.partners import Partner
from mock_server.errors import Forbidden, InvalidRequest, InvalidToken
from mock_server.settings import Settings
from mock_server.store import Store

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MAX_TOKEN_CHARS = 8192
_SECRET_KEY = "access_token_secret"


@dataclass(frozen=True, slots=True)
class TokenGrant:
    access_token: str
    expires_in: int
    refresh_token: str
    client_id: str


def exchange(
    store: Store, clock: Clock, settings: Settings, grant_type: str | None, assertion: str | None,
    audiences: Sequence[str],
) -> TokenGrant:
    """Check a signed assertion (its ``aud`` one of ``audiences``) and issue an access token for its partner."""
    if grant_type != GRANT_TYPE:
        raise InvalidRequest(f"grant_type must be {GRANT_TYPE}")
    if not assertion:
        raise InvalidRequest("assertion is required")
    partner = _check_assertion(store, clock, settings, assertion, audiences)
    return issue_token(store, clock, settings, partner.client_id)


def accepted_audiences(settings: Settings, called_base_url: str) -> tuple[str, ...]:
    """The ``aud`` values an exchange called at ``called_base_url`` accepts, the one partners should use first.

    A configured audience (a URL or preset, as Zest environments have one) is the only one; otherwise the base URL
    the partner called (scheme and Host as sent), as real Zest expects its own base URL, and the mock's own.
    """
    if settings.audience:
        return (settings.audience,)
    return tuple(dict.fromkeys((called_base_url.rstrip("/"), settings.base_url)))


def issue_token(store: Store, clock: Clock, settings: Settings, client_id: str) -> TokenGrant:
    """An access token for ``client_id`` (also what the control plane hands out without the JWT dance)."""
    import jwt

    now = int(clock.now().timestamp())
    # Credentials come from the OS's randomness: however many tokens a partner mints, the seeded ids don't move.
    claims = {"sub": client_id, "client_id": client_id, "iat": now, "exp": now + settings.token_ttl_seconds,
              "jti": secrets.token_hex(8)}
    token = jwt.encode(claims, store.secret(_SECRET_KEY), algorithm="HS256")
    return TokenGrant(token, settings.token_ttl_seconds, "zrt_" + secrets.token_hex(24), client_id)


def authenticate(store: Store, clock: Clock, authorization: str | None) -> Partner:
    """The partner behind an ``Authorization: Bearer`` header, or 401 ``invalid_token``."""
    if not authorization:
        raise InvalidToken("missing bearer token: send Authorization: Bearer <accessToken>")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
        raise InvalidToken("malformed Authorization header: expected 'Bearer <accessToken>'")
    claims = _verified_claims(store.secret(_SECRET_KEY), token)
    if claims is None:
        raise InvalidToken("bearer token is not a valid access token")
    if claims["exp"] <= clock.now().timestamp():
        raise InvalidToken("access token has expired: exchange a new assertion")
    partner = partners.find(store, str(claims["sub"]))
    if partner is None:
        raise InvalidToken("access token belongs to no registered partner")
    return partner


def client_of(store: Store, clock: Clock, authorization: str | None) -> str | None:
    """The client behind a bearer header, or None when it would not authenticate."""
    try:
        return authenticate(store, clock, authorization).client_id
    except InvalidToken:
        return None


@functools.lru_cache(maxsize=4096)
def _verified_claims(secret: str, token: str) -> dict[str, Any] | None:
    """The claims of a token signed with ``secret``: a pure function, so partners' reused tokens verify once.

    Expiry is not part of it: callers check ``exp`` against the simulated clock on every call.
    """
    import jwt

    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=["HS256"],
            options={"require": ["sub", "exp"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        return None
    return claims


def require_provisioned(partner: Partner) -> None:
    if not partner.provisioned:
        raise Forbidden(f"partner application {partner.client_id!r} is not provisioned for the partner API")


def _check_assertion(store: Store, clock: Clock, settings: Settings, assertion: str,
                     audiences: Sequence[str]) -> Partner:
    import jwt

    if len(assertion) > MAX_TOKEN_CHARS:
        raise InvalidToken("assertion is too large")
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise InvalidToken("assertion is not a well-formed JWT") from exc
    if header.get("alg") != "EdDSA":
        raise InvalidToken(f"assertion algorithm {header.get('alg')!r} is not accepted: sign with EdDSA (Ed25519)")
    client_id = unverified.get("client_id")
    if not isinstance(client_id, str) or not client_id or unverified.get("sub") != client_id:
        raise InvalidToken("assertion must carry sub and client_id, and they must be equal")
    partner = partners.find(store, client_id)
    if partner is None:
        raise InvalidToken(f"client_id {client_id!r} is not registered")
    claims = _verify_signature(assertion, partner, audiences)
    _check_times(claims, clock, settings)
    if partner.issuer and claims.get("iss") != partner.issuer:
        raise InvalidToken("assertion iss does not match the partner's registered issuer")
    assertion_replay.check_and_remember(store, clock, settings, partner.client_id, claims)
    return partner


def _verify_signature(assertion: str, partner: Partner, audiences: Sequence[str]) -> dict[str, Any]:
    import jwt

    try:
        return jwt.decode(
            assertion, partner.public_key_pem, algorithms=["EdDSA"], audience=list(audiences),
            options={"require": ["sub", "aud", "iat", "exp"], "verify_exp": False, "verify_iat": False,
                     "verify_nbf": False},
        )
    except jwt.InvalidAudienceError as exc:
        raise InvalidToken(f"assertion aud must be exactly {' or '.join(audiences)}") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidToken(f"assertion is missing the {exc.claim!r} claim") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken("assertion signature does not verify with the registered key") from exc


def _check_times(claims: dict[str, Any], clock: Clock, settings: Settings) -> None:
    """``iat``/``exp`` must fit simulated now or wall now, within the leeway.

    Simulated now serves partners whose tests share the mock's clock; wall now serves partners signing with their
    system clock, which is what real Zest compares against, even after the mock's clock was advanced by hours.
    """
    iat, exp, nbf = claims["iat"], claims["exp"], claims.get("nbf", claims["iat"])
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (iat, exp, nbf)):
        raise InvalidToken("assertion iat, exp and nbf must be Unix seconds")
    if exp <= iat or exp - iat > settings.max_assertion_lifetime_seconds:
        raise InvalidToken(f"assertion lifetime must be 1..{settings.max_assertion_lifetime_seconds} s (exp - iat)")
    problems = [_time_problem(iat, exp, nbf, now, settings.jwt_leeway_seconds)
                for now in (clock.now().timestamp(), clock.wall_time())]
    if all(problems):
        raise InvalidToken(f"{problems[0]} (judged against both simulated and wall time)")


def _time_problem(iat: float, exp: float, nbf: float, now: float, leeway: int) -> str | None:
    if iat > now + leeway:
        return "assertion iat is in the future beyond the allowed clock drift"
    if nbf > now + leeway:
        return "assertion nbf is in the future beyond the allowed clock drift: it is not valid yet"
    if exp < now - leeway:
        return "assertion has expired"
    return None
