"""Settings of one mock instance, built once: CLI flags > environment (ZEST_MOCK_*) > defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from mock_server.presets import CLOCK_MODES, ClockMode, resolve_audience


@dataclass(frozen=True)
class Settings:
    """Everything an instance needs to know; passed to ``create_app``.

    >>> Settings(clock_mode="manual", seed=7)          # CI: frozen clock, replayable ids
    >>> Settings.from_env(state_path=Path("zest.db"))  # env first, then these overrides
    """

    host: str = "127.0.0.1"
    port: int = 8080
    state_path: Path | None = None
    seed: int | None = None
    clock_mode: ClockMode = "realtime"
    clock_scale: float = 1.0
    clock_start: str | None = None
    audience: str | None = None
    public_url: str | None = None
    token_ttl_seconds: int = 3600
    jwt_leeway_seconds: int = 5
    max_assertion_lifetime_seconds: int = 300
    idempotency_ttl_seconds: int = 86_400
    upload_limit_bytes: int = 10 * 1024 * 1024
    json_body_limit_bytes: int = 1024 * 1024
    file_url_ttl_seconds: int = 900
    max_investor_rows: int = 500
    webhook_url: str | None = None
    webhook_secret: str | None = None
    sign_with_simulated_time: bool = False
    webhook_timeout_seconds: float = 10.0
    webhook_lane_concurrency: int = 256  # attempts in flight at once per partner (its lane); others never wait
    admin_policy: str | None = None
    scenario: str | None = None
    upload_sniffing: bool = True  # check magic bytes as well as the declared type
    reject_replayed_assertions: bool = False  # refuse an assertion whose jti was already exchanged
    # Connection-level limits (mock_server/http/limits.py): 431 / 408 in the Zest envelope, then the connection closes.
    max_request_head_bytes: int = 64 * 1024  # request line + headers
    max_request_headers: int = 100
    header_timeout_seconds: float = 10.0  # from the first byte of a request until its last header
    body_idle_timeout_seconds: float = 10.0  # longest silence while a request body is still owed
    strict_fields: bool = False  # refuse unknown request fields (400) instead of ignoring them with a warning

    @property
    def base_url(self) -> str:
        """The URL partners reach this instance at; used in signed file URLs."""
        return (self.public_url or f"http://{_url_host(self.host)}:{self.port}").rstrip("/")

    @property
    def expected_audience(self) -> str:
        """The exact JWT ``aud`` assertions must carry: configured, else this instance's own base URL."""
        return self.audience or self.base_url

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``ZEST_MOCK_<FIELD>`` variables, then non-None ``overrides`` (CLI flags)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"ZEST_MOCK_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _coerce(f.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = replace(cls(), **values)
        settings.check()
        return settings

    def check(self) -> None:
        """Fail at start-up with a precise message rather than misbehave later."""
        if self.clock_mode not in CLOCK_MODES:
            raise ValueError(f"clock mode must be one of {', '.join(CLOCK_MODES)}, not {self.clock_mode!r}")
        if self.clock_scale <= 0:
            raise ValueError("clock scale must be > 0")
        if self.webhook_lane_concurrency < 1:
            raise ValueError("webhook lane concurrency must be >= 1")
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be 1..65535, not {self.port}")
        if min(self.max_request_head_bytes, self.max_request_headers) < 1:
            raise ValueError("request head and header-count limits must be >= 1")
        if min(self.header_timeout_seconds, self.body_idle_timeout_seconds) <= 0:
            raise ValueError("header and body timeouts must be > 0")


def _coerce(name: str, raw: str) -> Any:
    default = getattr(Settings(), name)
    kind = type(default) if default is not None else None
    if name == "state_path":
        return Path(raw) if raw else None
    if name == "seed":
        return int(raw) if raw else None
    if name == "audience":
        return resolve_audience(raw) or None
    if kind is bool:
        return raw.lower() in ("1", "true", "yes", "on")
    if kind in (int, float):
        return kind(raw)
    return raw or None


def _url_host(host: str) -> str:
    return "localhost" if host in ("0.0.0.0", "127.0.0.1", "::", "") else host
