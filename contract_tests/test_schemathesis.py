"""Schemathesis against the mock's own ``/openapi.json``, in process: no 5xx, no answer outside the schema.

Every partner operation runs the examples, coverage and fuzzing phases (seeded, see ``schemathesis.toml``) with
the default checks. Auth is a real dev-partner bearer token given through ``[auth.openapi.HTTPBearer]`` rather
than a blanket header, so ``ignored_auth`` can still send its requests without and with bad credentials.

Before the schema is loaded, the mock gets an approved SPV, investors, open subscriptions and pending SPV
requests; schemathesis dictionaries feed their slugs to the fuzzer part of the time, so uploads, subscriptions,
get and cancel reach their 2xx answers too instead of only 404.

Two checks are narrowed (not dropped) where the published contract is wider than a schema can say, or where
schemathesis labels a request negative that is not negative on the wire (``mock_server/harness/st_support.py``,
shared with ``zest-mock conformance``; so are the seeding and the per-case fixes):

- ``positive_data_acceptance`` lets through a ``400 validation_error`` whose every entry is a rule on stored
  data (the template named in the body, the SPV's share classes and currency);
- ``negative_data_rejection`` on ``bulkCreateInvestors`` lets through a ``200`` whose request is well formed
  except inside rows, because a bad row fails alone; the check then asserts that every row the schema refuses
  came back ``failed``, and every row it accepts did not fail validation;
- ``negative_data_rejection`` on the form-encoded operations (token exchange, uploads) judges the fields as they
  were sent: a form field is text, so a "number instead of string" mutation that arrives as the string ``0.0``
  is a valid request, not a negative one.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import schemathesis
import st_hooks  # noqa: F401  registers PDF/JPEG/PNG/WEBP bytes for the upload parts (as `st run` does)
from schemathesis import Case
from starlette.applications import Starlette
from starlette.testclient import TestClient
from support import DEV, bearer, settings

from mock_server.app import create_app
from mock_server.dev_partner import dev_partner_private_key
from mock_server.harness.assertions import mint_assertion
from mock_server.harness.st_support import (
    PARAMETERS,
    narrowed_checks,
    operation_id,
    prepare_case,
    project_config,
    seed_mock,
)

ROOT = Path(__file__).resolve().parent.parent
APP = create_app(settings())
HEADERS = bearer(APP)


def _seed_state(app: Starlette) -> dict[str, list[str]]:
    """Resources for positive cases, as schemathesis dictionaries (name -> values), and a valid assertion."""
    dictionaries = seed_mock(TestClient(app), HEADERS)
    rt = app.state.rt
    assertion = mint_assertion(DEV, dev_partner_private_key(), rt.settings.expected_audience,
                               now=rt.clock.now().timestamp(), lifetime=300)
    return {**dictionaries, "assertions": [assertion]}


def _config(dictionaries: dict[str, list[str]]) -> schemathesis.Config:
    data = tomllib.loads((ROOT / "schemathesis.toml").read_text())
    token = HEADERS["Authorization"].removeprefix("Bearer ")
    return project_config(data, token=token, dictionaries=dictionaries, parameters=PARAMETERS, base_dir=str(ROOT))


# from_dict, not from_asgi("/openapi.json"): the latter leaves out the operation that serves the document itself,
# and every operation is to be exercised. The document is the very one GET /openapi.json serves.
schema = schemathesis.openapi.from_dict(APP.state.openapi["partner"], config=_config(_seed_state(APP)))
schema.app = APP
NARROWED = narrowed_checks(APP.state.openapi["partner"], judge_positive=True)


@schema.parametrize()
def test_partner_api(case: Case) -> None:
    prepare_case(case)
    excluded, additional = NARROWED.get(operation_id(case), ([], []))
    case.call_and_validate(excluded_checks=excluded, additional_checks=additional)
