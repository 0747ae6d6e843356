"""Control routes of simulated time: read the clock, change its mode, and advance it running every due job."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.responses import Response

from mock_server.clock import format_instant, parse_instant
from mock_server.domain import idempotency
from mock_server.errors import InvalidRequest
from mock_server.http.bodies import json_response, read_json
from mock_server.http.common import errors
from mock_server.http.operations import Answer, Body, Call, Operation
from mock_server.presets import ClockMode
from mock_server.validation import parse_model

MAX_ADVANCE_SECONDS = 10 * 365 * 86400
MAX_LISTED = 200  # jobs listed in an advance's answer, in the order they ran; `count` has them all


class ClockState(BaseModel):
    now: str
    mode: ClockMode
    scale: float


class AdvanceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float | None = Field(default=None, ge=0, le=MAX_ADVANCE_SECONDS)
    to: str | None = Field(default=None, description="ISO 8601 instant to advance to")

    @model_validator(mode="after")
    def _one_of(self) -> AdvanceBody:
        if (self.seconds is None) == (self.to is None):
            raise ValueError("give exactly one of seconds or to")
        return self


class AdvanceResult(BaseModel):
    model_config = ConfigDict(extra="allow")
    from_: str = Field(alias="from")
    to: str
    count: int
    ran: list[dict[str, Any]]
    omitted: int


class ClockUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["realtime", "manual", "scaled"]
    scale: float | None = Field(default=None, gt=0, le=1_000_000)


async def show(call: Call) -> Response:
    return json_response(call.rt.clock.describe())


async def advance(call: Call) -> Response:
    body = parse_model(AdvanceBody, await read_json(call.request, 4096))
    rt = call.rt
    start = rt.clock.now()
    if body.to is not None:
        try:
            target = parse_instant(body.to)
        except ValueError as exc:
            raise InvalidRequest(f"to must be an ISO 8601 instant, not {body.to!r}") from exc
        if target < start:
            raise InvalidRequest(f"the clock cannot move backwards: now is {format_instant(start)}")
        if (target - start).total_seconds() > MAX_ADVANCE_SECONDS:
            raise InvalidRequest(f"to is more than {MAX_ADVANCE_SECONDS} seconds (10 years) after now "
                                 f"({format_instant(start)}); one advance moves the clock at most that far")
    else:
        target = start + timedelta(seconds=body.seconds or 0)
    ran = await rt.scheduler.advance(target)
    rt.remember_clock()
    idempotency.purge_expired(rt.store, rt.clock)
    return json_response({"from": format_instant(start), "to": format_instant(rt.clock.now()), "count": len(ran),
                          "ran": ran[:MAX_LISTED], "omitted": max(len(ran) - MAX_LISTED, 0)})


async def update(call: Call) -> Response:
    body = parse_model(ClockUpdate, await read_json(call.request, 4096))
    call.rt.clock.set_mode(body.mode, body.scale)
    return json_response(call.rt.clock.describe())


OPERATIONS = [
    Operation("GET", "/_mock/clock", "getClock", "Mock clock", "Simulated now, mode and scale", show,
              {200: Answer("The clock", ClockState)}, plane="control"),
    Operation("PUT", "/_mock/clock", "setClockMode", "Mock clock", "Change the clock's mode or scale", update,
              {200: Answer("The clock", ClockState), **errors(400)}, body=Body("application/json", ClockUpdate),
              plane="control"),
    Operation("POST", "/_mock/clock/advance", "advanceClock", "Mock clock",
              "Advance simulated time, running every job due in between in time order", advance,
              {200: Answer("What ran, in order", AdvanceResult), **errors(400)},
              body=Body("application/json", AdvanceBody), plane="control",
              description="Answers only after every job due by the target ran (webhook attempts included). "
                          "`{\"seconds\": 0}` waits for the jobs due now."),
]
