"""The ``zest_clock`` fixture: the mock's clock and the test process's clock advanced together (freezegun), run as a
partner runs it (pytester in a subprocess); freezegun is imported only when the fixture is used."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support import QUIET

pytest_plugins = ["pytester"]

LOCKSTEP = '''
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt

ATTRIBUTES = {"underlyingCompanySlug": "co_acme", "currency": "USD",
              "shareClasses": [{"name": "Class A", "managementFeePercent": "2.0", "carryPercent": "20.0"}]}


def own_token(zest_mock):  # partner code: signs with its own process clock, as against real Zest
    now = int(time.time())
    claims = {"sub": zest_mock.client_id, "client_id": zest_mock.client_id, "aud": zest_mock.audience,
              "iat": now, "exp": now + 60, "jti": str(uuid.uuid4())}
    assertion = jwt.encode(claims, zest_mock.private_key_pem, algorithm="EdDSA")
    response = httpx.post(f"{zest_mock.base_url}/v1/oauth2/tokens", data={
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion})
    assert response.status_code == 201, response.text
    return response.json()["accessToken"]


def test_without_the_fixture_freezegun_is_not_loaded(zest_mock):
    assert "freezegun" not in sys.modules


def test_both_clocks_read_the_same_now_and_move_together(zest_mock, zest_clock):
    start = zest_mock.now()
    assert time.time() == start.timestamp() and datetime.now(UTC) == start
    result = zest_clock.advance("2h")
    assert result["to"] == (start + timedelta(hours=2)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert zest_mock.now() == start + timedelta(hours=2) == datetime.now(UTC) == zest_clock.now()
    zest_clock.advance(90)
    assert time.time() == zest_mock.time() == start.timestamp() + 7290


def test_tokens_expire_and_webhooks_verify_on_the_shared_clock(zest_mock, zest_clock, zest_webhook_receiver):
    zest_clock.advance("3d")  # far from the wall clock: the partner signs and checks with its frozen clock
    token = own_token(zest_mock)
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
    body = {"templateId": "syndicate_secondary", "templateVersion": "1.0.0", "attributes": ATTRIBUTES}
    assert httpx.post(f"{zest_mock.base_url}/v1/spv-requests", json=body, headers=headers).status_code == 201
    zest_clock.advance(0)
    assert zest_webhook_receiver.wait_for("spv_request.created")
    assert zest_webhook_receiver.rejected == []
    zest_clock.advance("1h")
    expired = httpx.get(f"{zest_mock.base_url}/v1/oauth2/info", headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]


def test_a_negative_advance_is_refused(zest_clock):
    try:
        zest_clock.advance("-5m")
    except ValueError as exc:
        assert "only moves forward" in str(exc)
    else:
        raise AssertionError("a negative advance was accepted")
'''


def test_zest_clock_keeps_the_process_clock_on_the_mock_s(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_lockstep=LOCKSTEP)
    result = pytester.runpytest_subprocess(*QUIET, "-p", "no:randomly")
    result.assert_outcomes(passed=4)


def test_loading_the_plugin_does_not_import_freezegun() -> None:
    code = "import sys, mock_server.harness.pytest_plugin; print('freezegun' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "False"


def test_the_mocks_event_loop_keeps_real_time_while_the_process_clock_is_frozen() -> None:
    # freezegun swaps time.monotonic before it patches the loop class: a server loop in another thread that reads
    # the frozen value in between schedules its next tick decades ahead and never stops. The mock's loop reads the
    # monotonic clock it was imported with, frozen or not.
    import asyncio
    import time

    import freezegun

    from mock_server.serving import new_loop

    mock_loop, plain_loop = new_loop(), asyncio.new_event_loop()
    try:
        with freezegun.freeze_time("2030-01-01", tick=False):  # no real_asyncio: the window freezegun leaves open
            frozen = time.monotonic()
            assert plain_loop.time() == frozen  # what a plain asyncio loop reads in that window
            assert mock_loop.time() != frozen
            first = mock_loop.time()
            assert next(t for t in iter(mock_loop.time, None) if t > first) > first  # it keeps moving
    finally:
        mock_loop.close()
        plain_loop.close()
