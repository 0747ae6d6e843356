"""Control routes of scenarios: list and show the library, load one into the running mock, the partner's
reports of processed webhook events that ``events_processed_once`` judges, and the runner's mark of the instant
the partner's command exited (``domain.runs``). The scenario model (and YAML) load with the first scenario route
called, not with the app.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from mock_server.clock import format_instant
from mock_server.domain import partners, processed, runs
from mock_server.domain.partners import DEV_CLIENT_ID
from mock_server.errors import FieldError, InternalError, NotFound, ValidationFailed
from mock_server.http.bodies import json_response, read_json
from mock_server.http.common import errors
from mock_server.http.operations import Answer, Body, Call, Operation, Param
from mock_server.scenarios import NAME_PATTERN
from mock_server.store import Row
from mock_server.validation import parse_model

if TYPE_CHECKING:
    from mock_server.scenarios.model import Scenario

_EVENT_ID = r"^[A-Za-z0-9_.:-]{1,200}$"


class Listing(BaseModel):
    model_config = ConfigDict(extra="allow")
    items: list[dict[str, Any]]


class Loaded(BaseModel):
    name: str
    seed: int
    startedAt: str = Field(description="Simulated instant the scenario started at; timeline offsets count from it")
    clock: dict[str, Any]
    faults: list[dict[str, Any]] = Field(description="The fault rules added, with their ids")


class ProcessedBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    eventIds: list[Annotated[str, Field(pattern=_EVENT_ID)]] = Field(min_length=1, max_length=1000)
    clientId: str = DEV_CLIENT_ID


class ExitBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    clientId: str = DEV_CLIENT_ID


class RunExitMark(BaseModel):
    clientId: str
    exitedAt: str = Field(description="Simulated instant the partner's command exited")
    wallAt: float = Field(description="Unix time, on the mock's clock, the partner's command exited")
    attemptsBefore: int = Field(description="Delivery attempts to the partner recorded before it exited; later "
                                            "ones are listed as after exit and not held against its receiver")


class ScenarioDocument(BaseModel):
    """A scenario with the keys of its YAML file (see scenarios/README.md); durations as text or seconds."""

    model_config = ConfigDict(extra="allow")
    name: str
    description: str


async def list_library(call: Call) -> Response:
    return json_response({"items": [s.summary() for s in _library()]})


async def show(call: Call) -> Response:
    return json_response(_named(call).to_document())


async def load(call: Call) -> Response:
    from mock_server.scenarios.setup import apply_scenario

    applied = await apply_scenario(call.rt, _named(call))
    return json_response(applied.to_wire())


async def load_document(call: Call) -> Response:
    from mock_server.scenarios import model as scenarios
    from mock_server.scenarios.setup import apply_scenario

    data = await read_json(call.request, 256 * 1024)
    try:
        scenario = scenarios.parse_scenario(data, source="body")
    except scenarios.ScenarioError as exc:
        raise ValidationFailed([FieldError(i.field, "format", i.message) for i in exc.issues]) from exc
    return json_response((await apply_scenario(call.rt, scenario)).to_wire())


async def report_processed(call: Call) -> Response:
    body = parse_model(ProcessedBody, await read_json(call.request, 256 * 1024))
    rt = call.rt
    partners.get(rt.store, body.clientId)
    at, wall_at = format_instant(rt.clock.now()), time.time()
    processed.report(rt.store, body.clientId, body.eventIds, at, wall_at)
    return json_response({"recorded": len(body.eventIds)}, 201)


async def list_processed(call: Call) -> Response:
    rows = processed.reports(call.rt.store, call.request.query_params.get("clientId"))
    return json_response({"items": [_processed(r) for r in rows]})


async def mark_exit(call: Call) -> Response:
    body = parse_model(ExitBody, await read_json(call.request, 8192))
    partners.get(call.rt.store, body.clientId)
    with call.rt.store.tx():
        mark = runs.mark_exit(call.rt, body.clientId)
    return json_response(asdict(mark), 201)


async def show_exit(call: Call) -> Response:
    mark = runs.run_exit(call.rt)
    if mark is None:
        raise NotFound("no run exit was marked since the last reset or scenario load")
    return json_response(asdict(mark))


def _library() -> list[Scenario]:
    from mock_server.scenarios import model as scenarios

    try:
        return scenarios.list_scenarios()
    except scenarios.ScenarioError as exc:
        raise InternalError(f"the scenario library is broken: {exc}") from exc


def _named(call: Call) -> Scenario:
    from mock_server.scenarios import model as scenarios

    name = call.request.path_params["name"]
    path = scenarios.scenario_path(name)
    if path is None:
        raise NotFound(f"no scenario {name!r}; the library has {', '.join(scenarios.library_names())}")
    try:
        return scenarios.load_file(path)
    except scenarios.ScenarioError as exc:
        raise InternalError(f"scenario {name!r} is broken: {exc}") from exc


def _processed(r: Row) -> dict[str, Any]:
    return {"seq": r["seq"], "clientId": r["client_id"], "eventId": r["event_id"], "wallAt": r["wall_at"],
            "at": r["at"]}


_NAME = (Param("name", "path", {"type": "string", "pattern": NAME_PATTERN}, True),)
_TAG = "Mock scenarios"
OPERATIONS = [
    Operation("GET", "/_mock/scenarios", "listScenarios", _TAG, "The shipped scenario library", list_library,
              {200: Answer("One summary per scenario", Listing)}, plane="control"),
    Operation("POST", "/_mock/scenarios", "loadScenarioDocument", _TAG,
              "Load a scenario given in the body (your own file, as JSON)", load_document,
              {200: Answer("Loaded", Loaded), **errors(400)}, body=Body("application/json", ScenarioDocument),
              plane="control", description="Same effect as loading a library scenario by name."),
    Operation("GET", "/_mock/scenarios/{name}", "getScenario", _TAG, "One library scenario, as a document", show,
              {200: Answer("The scenario"), **errors(404)}, params=_NAME, plane="control"),
    Operation("POST", "/_mock/scenarios/{name}/load", "loadScenario", _TAG,
              "Apply a library scenario: reset (partners kept), reseed, clock, policy, faults, webhook chaos", load,
              {200: Answer("Loaded", Loaded), **errors(404)}, params=_NAME, plane="control",
              description="The timeline and the expectations are the runner's (`zest-mock scenario run`); loading "
                          "sets the mock up and records the scenario's name and start instant."),
    Operation("POST", "/_mock/expectations/processed", "reportProcessedEvents", _TAG,
              "Report webhook events your receiver has processed (acted upon)", report_processed,
              {201: Answer("Recorded"), **errors(400, 404)}, body=Body("application/json", ProcessedBody),
              plane="control", description="Call it once per event you act upon; `events_processed_once` fails if "
                                           "an eventId is reported twice."),
    Operation("POST", "/_mock/runs/exit", "markRunExit", _TAG,
              "Mark now as the instant the partner's command exited", mark_exit,
              {201: Answer("The mark", RunExitMark), **errors(400, 404)}, body=Body("application/json", ExitBody),
              plane="control", description="`zest-mock scenario run` calls it as soon as COMMAND ends; delivery "
                                           "attempts recorded after it are reported as after exit."),
    Operation("GET", "/_mock/runs/exit", "getRunExit", _TAG, "The last run-exit mark", show_exit,
              {200: Answer("The mark", RunExitMark), **errors(404)}, plane="control"),
    Operation("GET", "/_mock/expectations/processed", "listProcessedEvents", _TAG,
              "Processed-event reports, oldest first", list_processed, {200: Answer("Reports", Listing)},
              params=(Param("clientId", "query", {"type": "string"}),), plane="control"),
]
