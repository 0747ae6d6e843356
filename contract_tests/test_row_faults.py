"""The ``fail_rows`` fault: chosen rows of a bulk investor create fail, retryable or not, and the journal keeps how
every row was answered, as a partner (and the scenario harness) sees it."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from support import bearer, events, runtime, settings

from mock_server.app import create_app
from mock_server.domain.idempotency import body_hash

BATCH = [{"partnerInvestorId": f"acme-inv-{n}", "email": f"investor{n}@example.com", "firstName": "Ada",
          "lastName": f"Number{n}", "dateOfBirth": "1980-01-15", "countryOfResidence": "AE"} for n in range(7341, 7349)]


def fail_rows(client: TestClient, *rows: dict[str, Any], times: int | None = 1) -> dict[str, Any]:
    response = client.post("/_mock/faults", json={"match": {"operationId": "bulkCreateInvestors"},
                                                  "action": "fail_rows", "times": times, "rows": list(rows)})
    assert response.status_code == 201, response.text
    return dict(response.json())


def post(client: TestClient, headers: dict[str, str], rows: list[dict[str, Any]], key: str | None = None
         ) -> list[dict[str, Any]]:
    sent = {**headers, **({"Idempotency-Key": key} if key else {})}
    response = client.post("/v1/investors", json={"investors": rows}, headers=sent)
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def journal(client: TestClient) -> list[dict[str, Any]]:
    return list(client.get("/_mock/requests", params={"operationId": "bulkCreateInvestors"}).json()["items"])


def person_count(app: Starlette) -> int:
    row = runtime(app).store.one("SELECT COUNT(*) AS n FROM investors")
    return int(row["n"]) if row else 0


def test_rows_fail_by_index_glob_and_regex_and_the_others_are_created(app: Starlette, client: TestClient,
                                                                      headers: dict[str, str]) -> None:
    rule = fail_rows(client, {"indexes": [1]}, {"partnerInvestorId": "acme-inv-734[45]"},
                     {"partnerInvestorIdRegex": r"acme-inv-73(47|48)", "error": "validation_error",
                      "field": "dateOfBirth", "message": "dateOfBirth is not accepted"})
    results = post(client, headers, BATCH)
    assert [r["status"] for r in results] == ["created", "failed", "created", "failed", "failed", "created",
                                              "failed", "failed"]
    assert results[1]["error"]["code"] == "internal_error" and results[1]["error"]["retryable"] is True
    assert "zestPersonId" not in results[1] and "field" not in results[1]["error"]
    assert f"fail_rows#{rule['id']}" in results[1]["error"]["message"]
    assert results[6]["error"] == {"code": "validation_error", "field": "investors[6].dateOfBirth",
                                   "message": "dateOfBirth is not accepted", "retryable": False}
    assert person_count(app) == 3 and len(events(app, "investor.created")) == 3  # failed rows wrote nothing

    again = post(client, headers, BATCH)  # times: 1, so the rule is spent
    assert [r["status"] for r in again] == ["already_exists", "created", "already_exists", "created", "created",
                                            "already_exists", "created", "created"]


def test_after_write_the_retry_answers_already_exists_with_the_written_person(app: Starlette, client: TestClient,
                                                                              headers: dict[str, str]) -> None:
    fail_rows(client, {"indexes": [0], "afterWrite": True})
    (failed,) = post(client, headers, BATCH[:1], key="first")
    assert failed["status"] == "failed" and failed["error"]["retryable"] is True
    assert person_count(app) == 1 and events(app, "investor.created") == []  # written, but not `created`
    (retried,) = post(client, headers, BATCH[:1], key="second")
    written = runtime(app).store.one("SELECT person_id FROM investors")
    assert written is not None
    assert retried == {"partnerInvestorId": "acme-inv-7341", "status": "already_exists",
                       "zestPersonId": written["person_id"]}
    assert events(app, "investor.created") == []  # already_exists emits nothing, as documented


def _seeded_statuses(seed: int) -> list[str]:
    app = create_app(settings(seed=seed))
    with TestClient(app) as client:
        fail_rows(client, {"share": 0.5}, times=None)
        return [r["status"] for r in post(client, bearer(app), BATCH)]


def test_a_share_of_rows_fails_as_the_seed_decides() -> None:
    first = _seeded_statuses(3)
    assert first == _seeded_statuses(3)
    assert {"created", "failed"} == set(first)
    assert any(_seeded_statuses(seed) != first for seed in (4, 5, 6))


def test_the_journal_marks_the_fault_and_keeps_every_row(client: TestClient, headers: dict[str, str]) -> None:
    rule = fail_rows(client, {"indexes": [1]}, {"indexes": [2], "error": "validation_error", "field": "email"})
    rows = [*BATCH[:3], {"partnerInvestorId": "bad", "email": "nope"}]
    post(client, headers, rows, key="k1")
    post(client, headers, rows, key="k1")  # the same key and body: the stored answer, replayed
    first, replay = journal(client)
    label = f"fail_rows#{rule['id']}"
    assert first["fault"] == label and replay["fault"] is None
    assert [(r["index"], r["partnerInvestorId"], r["status"], r["errorCode"], r["retryable"], r["fault"])
            for r in first["rows"]] == [
        (0, "acme-inv-7341", "created", None, None, None),
        (1, "acme-inv-7342", "failed", "internal_error", True, label),
        (2, "acme-inv-7343", "failed", "validation_error", False, label),
        (3, "bad", "failed", "validation_error", False, None),  # the mock's own validation, no fault
    ]
    assert first["rows"][0]["zestPersonId"].startswith("psn_") and first["rows"][2]["field"] == "investors[2].email"
    assert [r["rowHash"] for r in first["rows"]] == [body_hash(row) for row in rows]
    assert [(r["status"], r["fault"]) for r in replay["rows"]] == [(r["status"], None) for r in first["rows"]]
    others = client.get("/_mock/requests", params={"operationId": "exchangeJwtAssertion"}).json()["items"]
    assert all(entry["rows"] == [] for entry in others)


def test_rows_of_a_lost_answer_are_journaled_under_its_status(client: TestClient, headers: dict[str, str]) -> None:
    client.post("/_mock/faults", json={"match": {"operationId": "bulkCreateInvestors"}, "action": "error_after_commit",
                                       "status": 504})
    response = client.post("/v1/investors", json={"investors": BATCH[:2]}, headers=headers)
    assert response.status_code == 504
    (entry,) = journal(client)
    assert entry["status"] == 504 and [r["status"] for r in entry["rows"]] == ["created", "created"]


@pytest.mark.parametrize("rule", [
    {"action": "fail_rows", "match": {"operationId": "bulkCreateInvestors"}},  # no rows
    {"action": "fail_rows", "rows": [{"indexes": [0]}]},  # not on bulkCreateInvestors
    {"action": "fail_rows", "match": {"operationId": "createSubscriptions"}, "rows": [{"indexes": [0]}]},
    {"action": "error", "match": {"operationId": "bulkCreateInvestors"}, "rows": [{"indexes": [0]}]},
    {"action": "fail_rows", "match": {"operationId": "bulkCreateInvestors"}, "rows": []},
    {"action": "fail_rows", "match": {"operationId": "bulkCreateInvestors"}, "rows": [{"error": "internal_error"}]},
    {"action": "fail_rows", "match": {"operationId": "bulkCreateInvestors"},
     "rows": [{"indexes": [0], "error": "validation_error", "afterWrite": True}]},
    {"action": "fail_rows", "match": {"operationId": "bulkCreateInvestors"},
     "rows": [{"partnerInvestorIdRegex": "acme-(("}]},
    {"action": "fail_rows", "match": {"operationId": "bulkCreateInvestors"}, "rows": [{"indexes": [-1]}]},
    {"action": "fail_rows", "match": {"operationId": "bulkCreateInvestors"}, "rows": [{"share": 1.5}]},
    {"action": "fail_rows", "match": {"operationId": "bulkCreateInvestors"},
     "rows": [{"indexes": [0], "field": "shoeSize"}]},
])
def test_bad_row_fault_rules_are_400(client: TestClient, rule: dict[str, Any]) -> None:
    response = client.post("/_mock/faults", json=rule)
    assert response.status_code == 400 and response.json()["code"] == "validation_error", response.text


def test_the_control_document_describes_row_faults(client: TestClient) -> None:
    schemas = client.get("/_mock/openapi.json").json()["components"]["schemas"]
    assert "fail_rows" in str(schemas["FaultRule"])
    assert {"indexes", "partnerInvestorId", "partnerInvestorIdRegex", "share", "error", "afterWrite", "field",
            "message"} <= set(schemas["RowFault"]["properties"])
    assert "rows" in schemas["JournalEntry"]["properties"]
