"""The stateful phase, in process: schemathesis follows the links of the mock's own ``/openapi.json``.

Two chains, each a state machine over just its operations (so each has its own entry point):

- ``createSpvRequest`` 201 -> ``getSpvRequest`` / ``cancelSpvRequest`` (the slug from the response);
- ``bulkCreateInvestors`` 200 -> ``createSubscriptions`` (the person id into the request body) 201 ->
  ``uploadSubscriptionForm`` 201 -> ``uploadFundingReceipt`` (SPV slug and person id from each response).

Every scenario starts from the same state (reset, the id stream reseeded, the resources of ``seed_mock``), so the
server answers the same choices the same way: Hypothesis sees a consistent world and the run is deterministic.
The machine supplies what no link can: a contract-valid create body (fuzzed attributes never satisfy the template;
the per-operation run fuzzes them) and, for a subscription whose person was created in the scenario, the SPV slug
and its share class and currency. The proof that links were followed is the mock's journal
(``GET /_mock/requests``): 2xx answers on resources that only a linked response could have named.

Checks are those of ``test_schemathesis.py`` (same narrowings) minus two:
``use_after_free``, because cancelling keeps the request readable with status ``cancelled`` (reference §2.4), and
``ignored_auth``, which the per-operation run judges and which here would probe every step.
"""

from __future__ import annotations

import collections
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import hypothesis
import schemathesis
from schemathesis import Case, Response
from schemathesis.specs.openapi.checks import ignored_auth, use_after_free
from starlette.testclient import TestClient
from support import bearer, settings

from mock_server.app import create_app
from mock_server.harness.control_client import ControlClient
from mock_server.harness.st_support import (
    PARAMETERS,
    narrowed_checks,
    operation_id,
    prepare_case,
    project_config,
    register_media_types,
    sample_spv_request,
    seed_mock,
)

ROOT = Path(__file__).resolve().parent.parent
SEED = 20260507
SCENARIOS, STEPS = 20, 6  # investors -> subscriptions -> form -> funding is four steps
SPV_CHAIN = ("createSpvRequest", "getSpvRequest", "cancelSpvRequest")
INVESTOR_CHAIN = ("bulkCreateInvestors", "createSubscriptions", "uploadSubscriptionForm", "uploadFundingReceipt")

register_media_types()
APP = create_app(settings())
HEADERS = bearer(APP)
CLIENT = TestClient(APP)
CONTROL = ControlClient(str(CLIENT.base_url), http=CLIENT)
DOCUMENT: dict[str, Any] = APP.state.openapi["partner"]
NARROWED = narrowed_checks(DOCUMENT, judge_positive=True)
SAMPLE = sample_spv_request()


def fresh_state() -> dict[str, list[str]]:
    """The state every scenario starts from; the same seed gives the same slugs each time."""
    CONTROL.reset(keep_partners=True)  # the token stays valid
    CONTROL.seed(SEED)
    return seed_mock(CLIENT, HEADERS)


SEEDED = fresh_state()


def _config() -> schemathesis.Config:
    data = tomllib.loads((ROOT / "schemathesis.toml").read_text())
    # Positive data only (negative data is the per-operation run's), and only the declared links.
    data.setdefault("phases", {})["stateful"] = {"generation": {"mode": "positive"}, "inference": {"algorithms": []}}
    token = HEADERS["Authorization"].removeprefix("Bearer ")
    return project_config(data, token=token, dictionaries=SEEDED, parameters=PARAMETERS, base_dir=str(ROOT))


def chain_schema(operation_ids: Iterable[str]) -> schemathesis.BaseSchema:
    """The mock's document cut down to ``operation_ids``, served in process by APP."""
    wanted = set(operation_ids)
    paths = {path: kept for path, methods in DOCUMENT["paths"].items()
             if (kept := {method: spec for method, spec in methods.items() if spec["operationId"] in wanted})}
    schema = schemathesis.openapi.from_dict({**DOCUMENT, "paths": paths}, config=_config())
    schema.app = APP
    return schema


def run_chain(operation_ids: tuple[str, ...]) -> list[dict[str, Any]]:
    """Run the chain's state machine; returns the journal of every scenario (seeding calls included)."""
    journal: list[dict[str, Any]] = []
    machine = _workflow(chain_schema(operation_ids), journal)
    machine.run(settings=hypothesis.settings(machine.TestCase.settings, max_examples=SCENARIOS,
                                             stateful_step_count=STEPS, derandomize=True, database=None))
    return journal


def _workflow(schema: schemathesis.BaseSchema, journal: list[dict[str, Any]]) -> Any:
    base: Any = schema.as_state_machine()

    class Workflow(base):  # type: ignore[misc, valid-type]
        created_people: set[str]

        def setup(self) -> None:
            assert fresh_state() == SEEDED, "the reseeded mock must hand out the same slugs"
            self.created_people = set()

        def teardown(self) -> None:
            journal.extend(CONTROL.requests(limit=10_000)["items"])

        def before_call(self, case: Case) -> None:
            prepare_case(case)
            if operation_id(case) == "createSpvRequest" and _positive(case):
                case.body = dict(SAMPLE)
            elif operation_id(case) == "createSubscriptions":
                _subscribe_created_person(case, self.created_people)

        def after_call(self, response: Response, case: Case) -> None:
            super().after_call(response, case)
            if operation_id(case) == "bulkCreateInvestors" and response.status_code == 200:
                self.created_people.update(
                    str(row["zestPersonId"]) for row in response.json()["results"] if row.get("zestPersonId"))

        def validate_response(self, response: Response, case: Case, additional_checks: Any = None,
                              **kwargs: Any) -> None:
            excluded, additional = NARROWED.get(operation_id(case), ([], []))
            case.validate_response(response, excluded_checks=[*excluded, use_after_free, ignored_auth],
                                   additional_checks=[*additional, *(additional_checks or [])],
                                   transport_kwargs=kwargs or None, recorder=self.recorder)

    return Workflow


def _positive(case: Case) -> bool:
    return case.meta is None or case.meta.generation.mode.is_positive


def _subscribe_created_person(case: Case, created_people: set[str]) -> None:
    """When the link put a person created in this scenario into row 0, subscribe just them to the seeded SPV."""
    body = case.body
    rows = body.get("subscriptions") if isinstance(body, dict) else None
    if not (isinstance(rows, list) and rows and isinstance(rows[0], dict)
            and rows[0].get("zestPersonId") in created_people):
        return
    case.path_parameters = {**(case.path_parameters or {}), "spv_slug": SEEDED["vehicles"][0]}
    lump_sum = {"currency": SEEDED["currencies"][0], "value": "1000.00"}
    case.body = {"subscriptions": [{**rows[0], "shareClassSlug": SEEDED["share_classes"][0], "lumpSum": lump_sum}]}


def _tally(journal: list[dict[str, Any]]) -> dict[tuple[str, int], int]:
    return dict(sorted(collections.Counter((row["operationId"], row["status"]) for row in journal).items()))


def _segment(row: dict[str, Any], index: int) -> str:
    return str(row["path"].split("/")[index])


def test_created_spv_requests_are_read_and_cancelled_through_links() -> None:
    journal = run_chain(SPV_CHAIN)
    seeded = set(SEEDED["spv_requests"])
    # /v1/spv-requests/{slug}: a slug the seeding did not create came from a createSpvRequest response.
    linked = [row for row in journal if row["operationId"] in ("getSpvRequest", "cancelSpvRequest")
              and _segment(row, 3) not in seeded]
    tally = _tally(linked)
    assert any(status // 100 == 2 for (op, status) in tally if op == "getSpvRequest"), _tally(journal)
    assert any(status // 100 == 2 for (op, status) in tally if op == "cancelSpvRequest"), _tally(journal)
    assert not any(status >= 500 for (_, status) in _tally(journal)), _tally(journal)


def test_investors_flow_into_subscriptions_forms_and_fundings_through_links() -> None:
    journal = run_chain(INVESTOR_CHAIN)
    seeded = set(SEEDED["subscribers"]) | set(SEEDED["newcomers"])
    # /v1/spvs/{spv_slug}/subscription/{person_id}/...: a person the seeding did not create came from a
    # bulkCreateInvestors response, was subscribed through the link, then uploaded for through the next two.
    linked = [row for row in journal if row["operationId"] in ("uploadSubscriptionForm", "uploadFundingReceipt")
              and _segment(row, 5) not in seeded]
    tally = _tally(linked)
    assert tally.get(("uploadSubscriptionForm", 201)), _tally(journal)
    assert tally.get(("uploadFundingReceipt", 201)), _tally(journal)
    assert not any(status >= 500 for (_, status) in _tally(journal)), _tally(journal)
