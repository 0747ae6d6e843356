"""The scenario library: every shipped file is valid, bad files are reported with file, line and field, and loading a
scenario into a running mock resets it and applies its seed, policy, faults and chaos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.testclient import TestClient
from support import bearer, create_spv_request, runtime

from mock_server.cli import main
from mock_server.scenarios.model import (
    EXPECTATIONS,
    ScenarioError,
    list_scenarios,
    load_scenario,
    parse_duration,
    parse_scenario,
)

REQUIRED = {
    "happy_path", "spv_rejected", "spv_cancelled_while_pending", "slow_review", "api_flaky_5xx",
    "post_timeout_after_commit", "idempotency_conflict", "funding_before_form", "upload_limits",
    "webhook_receiver_down", "duplicate_webhooks", "out_of_order_webhooks", "reconciler_completion", "token_expiry",
    "bad_signatures", "investor_rows_partially_fail",
}
SPEC_EXPECTATIONS = {
    "idempotent_retries", "no_duplicate_resources", "form_before_funding", "backoff", "webhooks_acknowledged",
    "tampered_rejected", "events_processed_once", "flow_completed", "dead_letter_redelivered", "failed_rows_handled",
}
VALID = "name: {name}\ndescription: A scenario written for a test.\n"


def load(client: TestClient, name: str) -> dict[str, Any]:
    response = client.post(f"/_mock/scenarios/{name}/load")
    assert response.status_code == 200, response.text
    return dict(response.json())


# ---- the shipped library ----------------------------------------------------------------------------------------

def test_the_library_is_the_required_scenarios_and_each_loads_clean() -> None:
    library = list_scenarios()
    assert {s.name for s in library} == REQUIRED
    for scenario in library:
        assert scenario.source is not None and scenario.source.stem == scenario.name
        assert len(scenario.description) > 80, scenario.name
        assert "flow_completed" in {e.name for e in scenario.expectations}, scenario.name


def test_each_scenario_survives_a_round_trip_through_its_document() -> None:
    for scenario in list_scenarios():
        again = parse_scenario(scenario.to_document())
        assert again.model_dump() == scenario.model_dump(), scenario.name
        assert again.to_document() == scenario.to_document(), scenario.name


def test_the_expectation_registry_is_the_agreed_set() -> None:
    assert set(EXPECTATIONS) == SPEC_EXPECTATIONS


def test_the_scenarios_set_up_what_they_promise() -> None:
    by_name = {s.name: s for s in list_scenarios()}
    assert by_name["webhook_receiver_down"].webhookChaos.failAttempts == 6  # type: ignore[union-attr]
    assert [s.do for s in by_name["webhook_receiver_down"].timeline][2:5] == [
        "clear_chaos", "set_endpoint_healthy", "redeliver_dead"]
    assert by_name["duplicate_webhooks"].webhookChaos.duplicate  # type: ignore[union-attr]
    assert by_name["out_of_order_webhooks"].webhookChaos.reorderWindowSeconds  # type: ignore[union-attr]
    assert by_name["bad_signatures"].webhookChaos.tamperShare == 1.0  # type: ignore[union-attr]
    assert by_name["slow_review"].policy.spvReview.after == 3 * 86400  # type: ignore[union-attr]
    actions = {rule.action for rule in by_name["post_timeout_after_commit"].faults}
    assert "drop_after_commit" in actions
    assert max(s.at or 0 for s in by_name["token_expiry"].timeline) > 3600
    row_faults = [rule for rule in by_name["investor_rows_partially_fail"].faults if rule.action == "fail_rows"]
    errors = {(fault.error, fault.afterWrite) for rule in row_faults for fault in rule.rows or ()}
    assert errors == {("internal_error", False), ("internal_error", True), ("validation_error", False)}


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("1.5h", 5400), ("90", 90), (90, 90),
    (2.5, 2.5),
])
def test_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5parsecs", "h", "-5", "1h-5m", True, None])
def test_bad_durations(text: Any) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


# ---- bad files: every error with file, line and field ------------------------------------------------------------

BAD_FILES = [
    ("unknown_key", VALID + "bogus: 1\n", 3, "bogus", "Extra inputs"),
    ("wrong_type", VALID + "seed: lots\n", 3, "seed", "valid integer"),
    ("bad_duration", VALID + "timeline:\n  - {at: 1h, do: advance}\n  - at: 5parsecs\n    do: advance\n", 5,
     "timeline[1].at", "not a duration"),
    ("backwards", VALID + "timeline:\n  - {at: 2h, do: advance}\n  - {at: 1h, do: advance}\n", 5, "timeline[1].at",
     "only move forward"),
    ("bad_step", VALID + "timeline:\n  - {do: approve_pending, emit: sync}\n", 4, "timeline[0]", "emit belongs"),
    ("unknown_expectation", VALID + "expectations:\n  - idempotent_retry\n", 4, "expectations[0]",
     "did you mean 'idempotent_retries'"),
    ("bad_expectation_params", VALID + "expectations:\n  - backoff:\n      maxCalls: 0\n", 5,
     "expectations[0].backoff.maxCalls", "greater than or equal to 1"),
    ("bad_fault_action", VALID + "faults:\n  - {action: explode}\n", 4, "faults[0].action", "'error'"),
    ("bad_fault_rule", VALID + "faults:\n  - {action: latency}\n", 4, "faults[0]", "needs latencyMs"),
    ("bad_fault_operation", VALID + "faults:\n  - match:\n      operationId: createSpvRequests\n    action: drop\n",
     5, "faults[0].match.operationId", "did you mean 'createSpvRequest'"),
    ("bad_chaos", VALID + "webhookChaos:\n  failAttempts: 9\n", 4, "webhookChaos.failAttempts", "less than or equal"),
    ("bad_policy", VALID + "policy:\n  spvReview: {decision: approve, after: 3dd}\n", 4, "policy.spvReview.after",
     "not a duration"),
    ("duplicate_key", VALID + "seed: 1\nseed: 2\n", 4, "seed", "duplicate key"),
    ("invalid_yaml", VALID + "faults: [unclosed\n", 4, "(yaml)", "invalid YAML"),
    ("empty", "", 1, "(document)", "empty document"),
]


@pytest.mark.parametrize(("stem", "text", "line", "field", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_a_bad_file_is_reported_with_file_line_and_field(tmp_path: Path, stem: str, text: str, line: int, field: str,
                                                         message: str) -> None:
    path = tmp_path / f"{stem}.yaml"
    path.write_text(text.replace("{name}", stem))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    expected = f"{path}:{line}: {field}: "
    assert any(e.startswith(expected) and message in e for e in caught.value.errors), caught.value.errors


def test_the_name_must_be_the_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "my_file.yaml"
    path.write_text("description: d\n" + VALID.format(name="other_name"))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert any(e.startswith(f"{path}:2: name: must equal the file name 'my_file'") for e in caught.value.errors)


def test_every_error_of_a_file_is_reported_at_once_in_line_order(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text("name: many\nseed: x\nclock: sundial\nexpectations: [nope]\ntimeline:\n  - {do: advance}\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    fields = [(i.line, i.field) for i in caught.value.issues]
    assert fields == [(1, "description"), (2, "seed"), (3, "clock"), (4, "expectations[0]"), (6, "timeline[0]")]


def test_an_unknown_library_name_lists_the_library() -> None:
    with pytest.raises(ScenarioError, match="unknown scenario 'nope'.*happy_path"):
        load_scenario("nope")


# ---- loading into a running mock ------------------------------------------------------------------------------

def test_loading_resets_state_and_applies_policy_faults_and_chaos(app: Starlette, client: TestClient,
                                                                  headers: dict[str, str]) -> None:
    assert create_spv_request(client, headers).status_code == 201
    client.put("/_mock/webhooks/chaos/dev-partner", json={"duplicate": True})
    loaded = load(client, "api_flaky_5xx")
    assert loaded["name"] == "api_flaky_5xx" and loaded["seed"] == 5 and loaded["clock"]["mode"] == "manual"
    rt = runtime(app)
    assert rt.store.all("SELECT * FROM spv_requests") == []
    assert rt.store.get_meta("scenario_name") == "api_flaky_5xx"
    assert rt.store.get_meta("scenario_started_at") == loaded["startedAt"]
    rules = client.get("/_mock/faults").json()["items"]
    assert [r.get("match", {}).get("operationId") for r in rules][:3] == [
        "exchangeJwtAssertion", "getSpvRequest", "createSpvRequest"]
    assert [r["id"] for r in rules] == [r["id"] for r in loaded["faults"]]
    policy = client.get("/_mock/admin/policy").json()
    assert policy["spvReview"] == {"decision": "approve", "after": 300.0,
                                   "reason": "Rejected by the simulated admin policy"}
    assert client.get("/_mock/webhooks/chaos/dev-partner").json()["duplicate"] is False  # chaos reset


def test_loading_sets_the_dev_partners_chaos_and_a_later_load_clears_it(client: TestClient) -> None:
    load(client, "webhook_receiver_down")
    assert client.get("/_mock/webhooks/chaos/dev-partner").json()["failAttempts"] == 6
    assert client.get("/_mock/admin/policy").json()["spvReview"]["decision"] == "manual"
    load(client, "bad_signatures")
    chaos = client.get("/_mock/webhooks/chaos/dev-partner").json()
    assert chaos["failAttempts"] == 0 and chaos["tamperShare"] == 1.0
    assert client.get("/_mock/faults").json()["items"] == []


def test_the_same_seed_gives_the_same_ids_after_each_load(app: Starlette, client: TestClient) -> None:
    def first_slug(name: str) -> str:
        load(client, name)
        response = create_spv_request(client, bearer(app))
        assert response.status_code == 201, response.text
        return str(response.json()["spvRequestSlug"])

    assert first_slug("happy_path") == first_slug("happy_path")
    assert first_slug("spv_rejected") != first_slug("happy_path")  # another seed


def test_the_same_seed_gives_the_same_fault_decisions(client: TestClient, headers: dict[str, str]) -> None:
    document = {"name": "coin_flips", "description": "Half of the listings fail.", "seed": 99,
                "faults": [{"match": {"operationId": "listSpvRequests"}, "action": "error", "status": 503,
                            "probability": 0.5, "times": None}]}

    def statuses() -> list[int]:
        assert client.post("/_mock/scenarios", json=document).status_code == 200
        return [client.get("/v1/spv-requests", headers=headers).status_code for _ in range(16)]

    first = statuses()
    assert set(first) == {200, 503}
    assert statuses() == first


def test_a_scenario_document_in_the_body_is_validated_like_a_file(client: TestClient) -> None:
    response = client.post("/_mock/scenarios", json={"name": "x", "description": "d", "timeline": [{"do": "fly"}],
                                                     "expectations": ["nope"]})
    assert response.status_code == 400
    fields = {e["field"] for e in response.json()["validationErrors"]}
    assert fields == {"name", "timeline[0].do", "expectations[0]"}


def test_the_library_over_http(client: TestClient) -> None:
    items = client.get("/_mock/scenarios").json()["items"]
    assert {i["name"] for i in items} == REQUIRED
    shown = client.get("/_mock/scenarios/token_expiry").json()
    assert shown["name"] == "token_expiry" and shown["timeline"][0]["at"] == 7200.0
    assert client.get("/_mock/scenarios/nope").status_code == 404
    assert client.post("/_mock/scenarios/..%2Fsecrets/load").status_code == 404


# ---- processed-event reports ----------------------------------------------------------------------------------

def test_processed_event_reports_round_trip_and_are_emptied_by_a_load(client: TestClient) -> None:
    reported = client.post("/_mock/expectations/processed", json={"eventIds": ["wde_01", "wde_02", "wde_01"]})
    assert reported.status_code == 201 and reported.json() == {"recorded": 3}
    items = client.get("/_mock/expectations/processed").json()["items"]
    assert [(i["eventId"], i["clientId"]) for i in items] == [
        ("wde_01", "dev-partner"), ("wde_02", "dev-partner"), ("wde_01", "dev-partner")]
    assert all(isinstance(i["wallAt"], float) and i["at"].endswith("Z") for i in items)
    assert client.get("/_mock/expectations/processed?clientId=other").json()["items"] == []
    load(client, "happy_path")
    assert client.get("/_mock/expectations/processed").json()["items"] == []


@pytest.mark.parametrize(("body", "status"), [
    ({"eventIds": []}, 400), ({"eventIds": ["has space"]}, 400), ({"eventIds": "wde_1"}, 400),
    ({"eventIds": ["wde_1"], "clientId": "nobody"}, 404), ({"eventIds": ["wde_1"], "extra": 1}, 400),
])
def test_bad_processed_reports_are_refused(client: TestClient, body: dict[str, Any], status: int) -> None:
    assert client.post("/_mock/expectations/processed", json=body).status_code == status


# ---- the CLI --------------------------------------------------------------------------------------------------

def test_cli_lists_the_library() -> None:
    result = CliRunner().invoke(main, ["scenario", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert {line.split()[0] for line in lines} == REQUIRED and len(lines) == len(REQUIRED)


def test_cli_shows_a_scenario() -> None:
    result = CliRunner().invoke(main, ["scenario", "show", "webhook_receiver_down"])
    assert result.exit_code == 0, result.output
    assert "webhook_receiver_down (seed 10, clock manual)" in result.output
    assert "timeline: at +15h advance" in result.output
    assert "expect dead_letter_redelivered: " in result.output


def test_cli_show_reports_a_bad_file_and_fails(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(VALID.format(name="broken") + "clock: sundial\n")
    result = CliRunner().invoke(main, ["scenario", "show", str(path)])
    assert result.exit_code == 1
    assert f"{path}:3: clock: " in result.stderr
