"""A partner's first hour: `aud` as called, presets, dev credentials, the webhook endpoint command, clear CLI errors,
a busy port, `--strict-fields`, and the Makefile's serving-only install and wheel."""

from __future__ import annotations

import functools
import os
import re
import shutil
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from support import DEV, create_spv_request, live_server, settings

from mock_server.app import create_app
from mock_server.cli import main
from mock_server.dev_partner import dev_partner_private_key, dev_partner_private_key_file
from mock_server.harness.assertions import exchange_assertion, mint_assertion
from mock_server.presets import AUDIENCE_PRESETS
from mock_server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SANDBOX = AUDIENCE_PRESETS["sandbox"]


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def exchange(url: str, audience: str) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=10) as http:
        return exchange_assertion(http, mint_assertion(DEV, dev_partner_private_key(), audience))


@pytest.fixture
def url() -> Iterator[str]:
    """A mock on 127.0.0.1 with no public URL or audience configured (its own base URL: http://localhost:8080)."""
    with live_server(lambda _url: create_app(settings())) as (live_url, _app):
        yield live_url


# ---- aud ------------------------------------------------------------------------------------------------------------

def test_aud_is_the_base_url_the_partner_called(url: str) -> None:
    assert exchange(url, url).status_code == 201
    assert exchange(url.replace("127.0.0.1", "localhost"), url.replace("127.0.0.1", "localhost")).status_code == 201
    refused = exchange(url, "https://partner.example.com")
    assert refused.status_code == 401
    assert refused.json()["detail"] == f"assertion aud must be exactly {url} or http://localhost:8080"
    assert exchange(url, url + "/").status_code == 401  # exactly: no trailing slash


def test_a_configured_audience_is_the_only_one_and_presets_work_everywhere() -> None:
    configured = Settings.from_env({"ZEST_MOCK_AUDIENCE": "sandbox", "ZEST_MOCK_CLOCK_MODE": "manual"})
    assert configured.audience == SANDBOX
    with live_server(lambda _url: create_app(configured)) as (url, _app):
        assert exchange(url, SANDBOX).status_code == 201
        refused = exchange(url, url)
        assert refused.status_code == 401 and refused.json()["detail"] == f"assertion aud must be exactly {SANDBOX}"
        token = cli("token", "--mock-url", url, "--audience", "sandbox")
        assert token.exit_code == 0, token.output
        info = httpx.get(f"{url}/v1/oauth2/info", headers={"Authorization": f"Bearer {token.stdout.strip()}"})
        assert info.json()["clientId"] == DEV
        assert "aud must be exactly" in cli("token", "--mock-url", url).output
        assert cli("dev-credentials", "--mock-url", url, "--json").stdout.count(SANDBOX) == 2


def test_token_takes_mock_url_its_env_and_the_old_base_url(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("token", "--base-url", url).exit_code == 0
    monkeypatch.setenv("ZEST_MOCK_URL", url)
    result = cli("token")
    assert result.exit_code == 0, result.output
    assert httpx.get(f"{url}/v1/oauth2/info", headers={"Authorization": f"Bearer {result.stdout.strip()}"}
                     ).status_code == 200


# ---- dev credentials, webhook endpoint, deliveries ------------------------------------------------------------------

def test_dev_credentials_are_what_the_running_mock_accepts(url: str) -> None:
    output = cli("dev-credentials", "--mock-url", url).stdout
    lines = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in output.splitlines())
    key_file = Path(lines["private key"])
    assert key_file == dev_partner_private_key_file() and key_file.is_relative_to(ROOT / "mock_server")
    assert key_file.read_text() == dev_partner_private_key()
    assert lines["client id"] == DEV and lines["audience"] == url
    assert lines["webhook secret"].startswith("whsec_")
    assert "zest-mock webhooks endpoint URL" in lines["webhook url"]
    env = dict(line.split("=", 1) for line in cli("dev-credentials", "--mock-url", url, "--env").stdout.splitlines())
    assert env["ZEST_MOCK_URL"] == env["ZEST_BASE_URL"] == env["ZEST_AUDIENCE"] == url
    assert env["ZEST_PRIVATE_KEY_FILE"] == str(key_file) and env["ZEST_WEBHOOK_SECRET"].startswith("whsec_")
    assert exchange(url, env["ZEST_AUDIENCE"]).status_code == 201


def test_webhooks_endpoint_sets_it_and_deliveries_say_when_there_is_none(url: str) -> None:
    quiet = cli("webhooks", "deliveries", "--mock-url", url)
    assert quiet.stdout.splitlines() == [
        "no delivery attempts",
        f"{DEV} has no webhook endpoint: its events are kept until one is set (zest-mock webhooks endpoint URL)"]
    set_it = cli("webhooks", "endpoint", "http://127.0.0.1:9/hooks", "--secret", "whsec_abcdefgh12345678",
                 "--mock-url", url)
    assert set_it.exit_code == 0, set_it.output
    assert set_it.stdout.startswith(f"{DEV} webhooks go to http://127.0.0.1:9/hooks (secret whsec_abcdefgh12345678)")
    partner = next(p for p in httpx.get(f"{url}/_mock/partners").json()["items"] if p["clientId"] == DEV)
    assert (partner["webhookUrl"], partner["webhookSecret"]) == ("http://127.0.0.1:9/hooks", "whsec_abcdefgh12345678")
    assert cli("webhooks", "deliveries", "--mock-url", url).stdout == "no delivery attempts\n"
    assert cli("webhooks", "endpoint", "not a url", "--mock-url", url).exit_code == 1


# ---- clock --------------------------------------------------------------------------------------------------------

def test_a_negative_advance_says_time_only_moves_forward(url: str) -> None:
    result = cli("clock", "advance", "-5m", "--mock-url", url)
    assert result.exit_code == 2
    assert "'-5m' is negative: simulated time only moves forward" in result.output
    assert "no such option" not in result.output


def test_demo_policy_approvals_print_no_rejection_reason() -> None:
    with live_server(lambda _url: create_app(settings(admin_policy="demo"))) as (url, _app):
        token = httpx.post(f"{url}/_mock/tokens", json={"clientId": DEV}).json()["accessToken"]
        with httpx.Client(base_url=url) as http:
            assert create_spv_request(http, {"Authorization": f"Bearer {token}"}).status_code == 201
        lines = cli("clock", "advance", "2m", "--mock-url", url).stdout.splitlines()
    (review,) = [line for line in lines if " admin_review " in line]
    assert "decision=approve" in review and "outcome=approve" in review and "reason" not in review


# ---- serve ----------------------------------------------------------------------------------------------------------

def test_serve_on_a_busy_port_fails_before_the_banner() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "mock_server", "serve", "--port", str(port)], capture_output=True,
                              text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "choose another --port" in done.stderr
    assert " on http://" not in done.stderr + done.stdout


def test_serve_strict_fields_flag_reaches_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: served.append(app))
    for args, strict in ((["--strict-fields"], True), ([], False)):
        result = cli("serve", "--port", _free_port(), *args)
        assert result.exit_code == 0, result.output
        factory = served.pop()
        assert isinstance(factory, functools.partial) and factory.args[0].strict_fields is strict


def _free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


# ---- Makefile -------------------------------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_mock_installs_only_what_serving_needs(tmp_path: Path) -> None:
    plan = subprocess.run(["make", "-n", "-B", "mock", f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True).stdout
    installs = [line for line in plan.splitlines() if "pip install" in line and " -e " in line]
    assert installs and all("[test]" not in line for line in installs), plan
    test_plan = subprocess.run(["make", "-n", "-B", "test", f"VENV={tmp_path / 'venv'}"], cwd=ROOT,
                               capture_output=True, text=True, timeout=60, check=True).stdout
    assert "'.[test]'" in test_plan


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_dist_builds_a_wheel_with_the_dev_key_and_scenarios(tmp_path: Path) -> None:
    venv = Path(sys.prefix)
    done = subprocess.run(["make", "dist", f"VENV={venv}", f"DIST={tmp_path}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=540, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = tmp_path.glob("zest_mock-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "mock_server/data/dev_partner/ed25519-private.pem" in names
    assert "mock_server/data/scenarios/happy_path.yaml" in names
