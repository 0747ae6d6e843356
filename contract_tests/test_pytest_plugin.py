"""The pytest plugin as a partner meets it: test files run by pytest in a subprocess (pytester), outcomes asserted.

Covers the README example, a webhook that never comes, state reset between tests, the seed option, the scenario
marker, signature refusal, ``--zest-base-url`` against an already running mock, and a light start-up.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import PARTNER_HELPERS, QUIET, live_server, settings

from mock_server.app import create_app

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pytest" / "test_partner_example.py"

RESET_AND_SEED = '''
from helpers import create


def test_one_creates(zest_mock, zest_control):
    create(zest_mock)
    zest_control.add_fault({"match": {"operationId": "getSpvRequest"}, "action": "error", "status": 500})
    assert zest_control.state()["partners"]["dev-partner"]["spvRequests"]["count"] == 1


def test_two_starts_clean(zest_mock, zest_control):
    assert zest_control.state()["partners"]["dev-partner"]["spvRequests"]["count"] == 0
    assert zest_control.faults()["items"] == []
    assert zest_control.requests()["items"] == []
    assert zest_control.clock()["mode"] == "manual"
    create(zest_mock)
'''

WEBHOOKS = '''
import sys

import pytest

from helpers import create


def test_nothing_heavy_at_start_up():
    assert "mock_server.app" not in sys.modules
    assert "mock_server.harness.control_client" not in sys.modules
    assert "freezegun" not in sys.modules


def test_waits_for_a_webhook_that_never_comes(zest_mock, zest_webhook_receiver):
    create(zest_mock)
    zest_webhook_receiver.wait_for("spv_request.completed", timeout=0.3)


def test_forged_copies_are_refused(zest_mock, zest_control, zest_webhook_receiver):
    zest_control.set_chaos("dev-partner", {"tamperShare": 1.0, "tamperKinds": ["bad_signature"]})
    create(zest_mock)
    zest_control.advance(seconds=0)
    assert zest_webhook_receiver.wait_for("spv_request.created")["eventType"] == "spv_request.created"
    assert zest_webhook_receiver.event_types() == ["spv_request.created"]
    assert [r.reason for r in zest_webhook_receiver.rejected] == ["no v1 signature matches"]


@pytest.mark.zest_scenario("happy_path")
def test_scenario_marker_loads_the_scenario(zest_mock, zest_control, zest_webhook_receiver):
    assert zest_control.policy()["spvReview"]["decision"] == "approve"
    slug = create(zest_mock)
    zest_control.advance(seconds=600)
    assert zest_webhook_receiver.wait_for("spv_request.completed")["data"]["spvRequestSlug"] == slug


def test_the_next_test_is_back_to_the_configured_policy(zest_control):
    assert zest_control.policy()["spvReview"]["decision"] == "manual"
'''


@pytest.fixture
def files(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(helpers=PARTNER_HELPERS)
    return pytester


def slugs(pytester: pytest.Pytester) -> list[str]:
    path = pytester.path / "slugs.txt"
    lines = path.read_text().split() if path.exists() else []
    path.unlink(missing_ok=True)
    return lines


def test_the_readme_example_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_partner_example=EXAMPLE.read_text())
    result = pytester.runpytest_subprocess(*QUIET)
    result.assert_outcomes(passed=2)


def test_webhooks_scenarios_and_a_clear_failure(files: pytest.Pytester) -> None:
    files.makepyfile(test_webhooks=WEBHOOKS)
    result = files.runpytest_subprocess(*QUIET, "-rf")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines([
        "*test_waits_for_a_webhook_that_never_comes*",
        '>*zest_webhook_receiver.wait_for("spv_request.completed", timeout=0.3)',
        "*no verified spv_request.completed webhook arrived at http://127.0.0.1:*/zest/webhooks within 0.3 s",
        "*verified so far: ?'spv_request.created'?",
        "*the mock stored no spv_request.completed event for dev-partner: nothing triggered one yet",
    ])


def test_state_is_reset_between_tests_and_the_seed_gives_the_same_slugs(files: pytest.Pytester) -> None:
    files.makepyfile(test_reset=RESET_AND_SEED)
    files.runpytest_subprocess(*QUIET, "--zest-mock-seed", "7").assert_outcomes(passed=2)
    seven = slugs(files)
    files.runpytest_subprocess(*QUIET, "--zest-mock-seed", "8").assert_outcomes(passed=2)
    eight = slugs(files)
    assert len(set(seven)) == 1 and len(seven) == 2  # reseeded before each test: same calls, same ids
    assert len(set(eight)) == 1 and eight != seven


def test_runs_against_an_already_running_mock(files: pytest.Pytester) -> None:
    files.makepyfile(test_reset=RESET_AND_SEED)
    files.runpytest_subprocess(*QUIET, "--zest-mock-seed", "7").assert_outcomes(passed=2)
    served_here = slugs(files)
    with live_server(lambda url: create_app(settings(public_url=url, seed=3))) as (url, app):
        result = files.runpytest_subprocess(*QUIET, "--zest-mock-seed", "7", f"--zest-base-url={url}")
        result.assert_outcomes(passed=2)
        assert app.state.rt.store.one("SELECT COUNT(*) AS n FROM spv_requests")["n"] == 1  # the last test's
    assert slugs(files) == served_here


def test_an_unreachable_base_url_fails_clearly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(zest_mock):\n    pass\n")
    result = pytester.runpytest_subprocess(*QUIET, "--zest-base-url=http://127.0.0.1:9")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*zest-mock: resetting the mock failed: cannot reach the mock at http://127.0.0.1:9*--zest-base-url*"])
