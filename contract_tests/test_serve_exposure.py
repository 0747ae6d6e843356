"""``zest-mock serve``: what it announces, the warning beyond loopback, and the settings it hands to uvicorn."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner, Result

from mock_server.cli import main
from mock_server.http.limits import GuardedHttpToolsProtocol
from mock_server.settings import Settings


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What ``serve`` passed to ``uvicorn.run`` (which is not run)."""
    captured: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: captured.update(app=app, **kwargs))
    return captured


def serve(*args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner(env=env).invoke(main, ["serve", "--port", "8123", *args])
    assert result.exit_code == 0, result.output
    return result


def settings_of(served: dict[str, Any]) -> Settings:
    settings: Settings = served["app"].args[0]  # functools.partial(create_app, settings)
    return settings


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7"])
def test_binding_beyond_loopback_warns_what_is_exposed(served: dict[str, Any], host: str) -> None:
    result = serve("--host", host)
    bound = f"http://[{host}]:8123" if ":" in host else f"http://{host}:8123"
    assert f"listening on {bound} " in result.stderr
    warning = result.stderr.split("WARNING:", 1)[1]
    for exposed in ("/_mock control plane", "webhook secret", "mint bearer tokens", "reset the state"):
        assert exposed in warning
    assert served["host"] == host


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_binds_do_not_warn(served: dict[str, Any], host: str) -> None:
    result = serve("--host", host)
    assert "WARNING" not in result.stderr and "listening on http://" in result.stderr


def test_the_announcement_names_the_bound_url_and_the_partners_base_url(served: dict[str, Any]) -> None:
    result = serve()
    assert "listening on http://127.0.0.1:8123 " in result.stderr
    assert "docs at http://127.0.0.1:8123/docs" in result.stderr
    assert "base URL (JWT aud, file URLs) http://localhost:8123" in result.stderr


def test_replay_refusal_is_off_by_default_and_on_by_flag_or_environment(served: dict[str, Any]) -> None:
    serve()
    assert settings_of(served).reject_replayed_assertions is False
    serve("--reject-replayed-assertions")
    assert settings_of(served).reject_replayed_assertions is True
    serve(env={"ZEST_MOCK_REJECT_REPLAYED_ASSERTIONS": "1"})
    assert settings_of(served).reject_replayed_assertions is True


def test_the_connection_limits_come_from_settings(served: dict[str, Any]) -> None:
    serve(env={"ZEST_MOCK_MAX_REQUEST_HEAD_BYTES": "4096", "ZEST_MOCK_HEADER_TIMEOUT_SECONDS": "2.5"})
    protocol = served["http"]
    assert issubclass(protocol, GuardedHttpToolsProtocol)
    assert (protocol.limits.head_bytes, protocol.limits.headers, protocol.limits.header_timeout,
            protocol.limits.body_idle_timeout) == (4096, 100, 2.5, 10.0)


@pytest.mark.parametrize("env", [{"ZEST_MOCK_MAX_REQUEST_HEADERS": "0"}, {"ZEST_MOCK_BODY_IDLE_TIMEOUT_SECONDS": "0"}])
def test_nonsense_limits_are_refused_at_start(served: dict[str, Any], env: dict[str, str]) -> None:
    result = CliRunner(env=env).invoke(main, ["serve"])
    assert result.exit_code == 2 and "must be" in result.stderr and not served
