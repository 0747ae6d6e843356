"""Scenarios: the YAML format, its validation with ``file:line: field: message`` errors, and the shipped library.

A scenario is one YAML file (``mock_server/data/scenarios/<name>.yaml`` for the library): how the mock is set up
(seed, clock mode, admin policy, fault rules, webhook chaos), a timeline the runner plays while the partner's
command runs, and the expectations judged at the end. This module owns the model, the registry of expectation
names with their parameter models (``EXPECTATIONS``: ``harness.expectations`` implements exactly these), durations,
and the loader, which reports every error at once with the line it comes from.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializeAsAny,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from mock_server.domain.faults import FaultRule
from mock_server.domain.policy import AdminPolicy
from mock_server.http.registry import partner_operation_ids
from mock_server.scenarios import NAME_PATTERN
from mock_server.scenarios.yaml_lines import Issue, Loc, field_path, line_of, read_yaml, shown, syntax_issue
from mock_server.webhooks.chaos import WebhookChaos
from mock_server.webhooks.events import EVENT_TYPES

LIBRARY = Path(__file__).resolve().parent.parent / "data" / "scenarios"
MAX_SECONDS = 10 * 365 * 86400
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")
_UNITS = (86400, 3600, 60, 1)


def parse_duration(value: str | float) -> float:
    """Seconds from ``30s``, ``5m``, ``2h``, ``1d``, ``1h30m``, ``1.5h`` or a number of seconds."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"a duration is a number of seconds or text like 30s, 5m, 2h, 1d, 1h30m, not {value!r}")
    if isinstance(value, str):
        text, original = value.strip().lower(), value
        match = _DURATION.fullmatch(text)
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            value = float(text)
        elif text and match:
            value = sum(float(part) * unit for part, unit in zip(match.groups(), _UNITS, strict=True) if part)
        else:
            raise ValueError(f"{original!r} is not a duration like 30s, 5m, 2h, 1d or 1h30m")
    if not 0 <= value <= MAX_SECONDS:
        raise ValueError(f"a duration must be between 0 and {MAX_SECONDS} seconds (10 years)")
    return float(value)


def format_duration(seconds: float) -> str:
    """``1d2h30m`` for 95400: the inverse of ``parse_duration`` for display."""
    if seconds != int(seconds) or seconds == 0:
        return f"{seconds:g}s"
    parts, rest = [], int(seconds)
    for unit, label in zip(_UNITS, "dhms", strict=True):
        if rest >= unit:
            parts.append(f"{rest // unit}{label}")
            rest %= unit
    return "".join(parts)


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# ---- expectations: the registry ---------------------------------------------------------------------------------

EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]


class NoParams(_Closed):
    """The expectation takes no parameters."""


class BackoffParams(_Closed):
    maxCalls: int = Field(default=3, ge=1, le=1000, description="At most this many calls ...")
    withinSeconds: float = Field(default=1.0, gt=0, le=3600,
                                 description="... within this many seconds of the partner's waiting (mock-measured)")


class AcknowledgedParams(_Closed):
    withinSeconds: float = Field(default=10.0, gt=0, le=300, description="Wall seconds the receiver has to answer 2xx")


class FlowCompletedParams(_Closed):
    event: EventType = Field(default="subscription.completed", description="The event that marks the flow's end")


class FailedRowsParams(_Closed):
    minBackoffSeconds: float = Field(default=0.2, ge=0, le=3600, description="Seconds the partner waits at least "
                                     "between the mock's answer with a retryable row failure and the resubmission "
                                     "(the mock's own wall readings, its answer time excluded, 0.05 s tolerance)")


# name -> parameter model; `harness.expectations` implements exactly these names.
EXPECTATIONS: dict[str, type[BaseModel]] = {
    "idempotent_retries": NoParams,
    "no_duplicate_resources": NoParams,
    "form_before_funding": NoParams,
    "backoff": BackoffParams,
    "webhooks_acknowledged": AcknowledgedParams,
    "tampered_rejected": NoParams,
    "events_processed_once": NoParams,
    "flow_completed": FlowCompletedParams,
    "dead_letter_redelivered": NoParams,
    "failed_rows_handled": FailedRowsParams,
}
EXPECTATION_SUMMARIES: dict[str, str] = {
    "idempotent_retries": "every write retried after a 5xx/429/timeout/drop reused its Idempotency-Key and body",
    "no_duplicate_resources": "no two 201 creates with the same body hash under different Idempotency-Keys",
    "form_before_funding": "no funding upload before a successful form upload for that subscription",
    "backoff": "after a 5xx/429 answer, at most maxCalls calls within withinSeconds of the partner's waiting "
               "(measured by the mock)",
    "webhooks_acknowledged": "every real attempt to a healthy receiver answered 2xx within withinSeconds",
    "tampered_rejected": "every forged or stale copy of a webhook was refused with a 4xx",
    "events_processed_once": "no eventId reported twice to POST /_mock/expectations/processed (without reports: "
                             "every repeated copy acknowledged 2xx)",
    "flow_completed": "an event of type `event` was stored for the dev partner",
    "dead_letter_redelivered": "every dead delivery was later delivered by a redelivery",
    "failed_rows_handled": "failed investor rows: retryable ones resubmitted with backoff until created or "
                           "already_exists, others never resubmitted unchanged; every partnerInvestorId mapped once; "
                           "subscriptions only for mapped persons",
}


class Expectation(BaseModel):
    """One expectation: its registered name and its parameters (an instance of ``EXPECTATIONS[name]``)."""

    model_config = ConfigDict(frozen=True)
    name: str
    params: SerializeAsAny[BaseModel]

    def to_document(self) -> str | dict[str, Any]:
        """The YAML form: the bare name, or ``{name: params}`` when parameters were given."""
        given = self.params.model_dump(mode="json", exclude_unset=True)
        return {self.name: given} if given else self.name


def parse_expectations(raw: Any) -> tuple[list[Expectation], list[tuple[Loc, str]]]:
    """Expectation entries (a name, or ``{name: {params}}``) and the errors found, each with its location."""
    if raw is None:
        return [], []
    if not isinstance(raw, list):
        return [], [(("expectations",), "must be a list of expectation names or {name: {params}} mappings")]
    found: list[Expectation] = []
    errors: list[tuple[Loc, str]] = []
    for index, entry in enumerate(raw):
        expectation, entry_errors = _expectation(entry, ("expectations", index))
        errors += entry_errors
        if expectation is not None and any(e.name == expectation.name for e in found):
            errors.append((("expectations", index), f"{expectation.name!r} is listed twice"))
        elif expectation is not None:
            found.append(expectation)
    return found, errors


def _expectation(entry: Any, loc: Loc) -> tuple[Expectation | None, list[tuple[Loc, str]]]:
    if isinstance(entry, Expectation):
        return entry, []
    if isinstance(entry, str):
        name, params, where = entry, {}, loc
    elif isinstance(entry, dict) and len(entry) == 1 and isinstance(next(iter(entry)), str):
        name, params = next(iter(entry.items()))
        where = (*loc, name)
        params = {} if params is None else params
    else:
        return None, [(loc, "must be an expectation name or a one-key mapping {name: {params}}")]
    model = EXPECTATIONS.get(name)
    if model is None:
        close = difflib.get_close_matches(name, EXPECTATIONS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return None, [(where, f"unknown expectation {name!r}; {hint}known: {', '.join(EXPECTATIONS)}")]
    if not isinstance(params, dict):
        return None, [(where, f"the parameters of {name!r} must be a mapping")]
    try:
        return Expectation(name=name, params=model.model_validate(params)), []
    except ValidationError as exc:
        return None, [((*where, *err["loc"]), _message(err)) for err in exc.errors(include_url=False)]


# ---- the timeline ---------------------------------------------------------------------------------------------

Action = Literal["approve_pending", "reject_pending", "complete_funded", "advance", "redeliver_dead",
                 "set_endpoint_healthy", "clear_faults", "clear_chaos"]
CONDITIONS = ("none", "spv_request_pending", "spv_request_any", "subscription_funded")
DEFAULT_REJECT_REASON = "Rejected by the scenario timeline"


class Step(_Closed):
    """One timeline step: optionally wait for a condition, move the clock to ``at``, then do one thing."""

    waitFor: str = Field(default="none", description="none | spv_request_pending | spv_request_any | "
                                                     "subscription_funded | event:<eventType>")
    at: float | None = Field(default=None, description="Simulated seconds from the scenario's start")
    do: Action
    reason: str | None = Field(default=None, min_length=1, max_length=2000)
    emit: Literal["sync", "reconciler"] | None = None

    @field_validator("at", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)

    @field_validator("waitFor")
    @classmethod
    def _condition(cls, value: str) -> str:
        event = value.removeprefix("event:")
        if value in CONDITIONS or (value.startswith("event:") and event in EVENT_TYPES):
            return value
        raise ValueError(f"{value!r} is not a condition: use one of {', '.join(CONDITIONS)} or event:<eventType> "
                         f"with an eventType among {', '.join(EVENT_TYPES)}")

    @model_validator(mode="after")
    def _coherent(self) -> Step:
        if self.reason is not None and self.do != "reject_pending":
            raise ValueError("reason belongs to reject_pending only")
        if self.emit is not None and self.do != "complete_funded":
            raise ValueError("emit belongs to complete_funded only")
        if self.do == "advance" and self.at is None:
            raise ValueError("advance needs at: the offset to move the clock to")
        if self.do == "reject_pending" and self.reason is None:
            self.reason = DEFAULT_REJECT_REASON
        if self.do == "complete_funded" and self.emit is None:
            self.emit = "sync"
        return self


# ---- the scenario ---------------------------------------------------------------------------------------------

class Scenario(_Closed):
    """A parsed, valid scenario. ``policy``/``faults``/``webhookChaos`` are the control plane's own models."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(min_length=1, max_length=4000)
    seed: int = Field(default=1, ge=0, le=2**63 - 1)
    clock: Literal["manual", "realtime", "scaled"] = "manual"
    policy: AdminPolicy | None = None
    faults: list[FaultRule] = []
    webhookChaos: WebhookChaos | None = None
    timeline: list[Step] = []
    expectations: list[Expectation] = []
    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The file it was loaded from (None when built from a document)."""
        return self._source

    @field_validator("policy", mode="before")
    @classmethod
    def _policy_durations(cls, value: Any) -> Any:
        """``after`` may be a duration (``3d``) in a scenario; the control plane's model wants seconds."""
        if not isinstance(value, dict):
            return value
        return {part: _after_in_seconds(body) for part, body in value.items()}

    @field_validator("expectations", mode="before")
    @classmethod
    def _expectations(cls, value: Any) -> Any:
        found, errors = parse_expectations(value)
        if errors:
            loc, message = errors[0]
            raise ValueError(f"{field_path(loc)}: {message}")
        return found

    @field_serializer("expectations")
    def _dump_expectations(self, value: list[Expectation]) -> list[str | dict[str, Any]]:
        return [e.to_document() for e in value]

    def to_document(self) -> dict[str, Any]:
        """The scenario as a JSON-ready document with the YAML keys (durations in seconds)."""
        document = self.model_dump(mode="json", exclude_none=True)
        document["faults"] = [rule.model_dump(mode="json", exclude_unset=True) for rule in self.faults]
        for key in ("policy", "webhookChaos"):
            if (body := getattr(self, key)) is not None:
                document[key] = body.model_dump(mode="json", exclude_unset=True)
        return document

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "seed": self.seed, "clock": self.clock,
                "faults": len(self.faults), "timelineSteps": len(self.timeline),
                "expectations": [e.name for e in self.expectations]}


def _after_in_seconds(body: Any) -> Any:
    if isinstance(body, dict) and isinstance(body.get("after"), str):
        try:
            return {**body, "after": parse_duration(body["after"])}
        except ValueError:
            return body  # the policy model then names the field
    return body


# ---- errors and loading ---------------------------------------------------------------------------------------

class ScenarioError(Exception):
    """A scenario that cannot be used; ``errors`` lists every problem as ``file:line: field: message``."""

    def __init__(self, errors: list[str], issues: list[Issue] | None = None) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors
        self.issues = issues or []

    @classmethod
    def of(cls, issues: list[Issue]) -> ScenarioError:
        return cls([str(issue) for issue in issues], issues)


def _message(err: Any) -> str:
    return str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")

def library_names() -> list[str]:
    return sorted(path.stem for path in LIBRARY.glob("*.yaml"))


def scenario_path(name: str) -> Path | None:
    """The library file of ``name``, or None (names only: never a path from outside the library)."""
    if not re.fullmatch(NAME_PATTERN, name):
        return None
    path = LIBRARY / f"{name}.yaml"
    return path if path.is_file() else None


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A library scenario by name, or a scenario file by path; raises ``ScenarioError`` listing every problem."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith((".yaml", ".yml")):
        return load_file(Path(name_or_path))
    path = scenario_path(text)
    if path is None:
        raise ScenarioError([f"unknown scenario {text!r}: the library has {', '.join(library_names())} "
                             f"(or give the path of a .yaml file)"])
    return load_file(path)


def list_scenarios() -> list[Scenario]:
    """Every library scenario, by name; raises ``ScenarioError`` with the problems of every broken file."""
    loaded: list[Scenario] = []
    errors: list[str] = []
    for name in library_names():
        try:
            loaded.append(load_file(LIBRARY / f"{name}.yaml"))
        except ScenarioError as exc:
            errors += exc.errors
    if errors:
        raise ScenarioError(errors)
    return loaded


def load_file(path: Path) -> Scenario:
    source = shown(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([f"{source}:1: (file): cannot read: {exc}"]) from exc
    scenario = parse_text(text, source=source, stem=path.stem)
    scenario._source = path
    return scenario


def parse_text(text: str, *, source: str = "<scenario>", stem: str | None = None) -> Scenario:
    """A scenario from YAML text; ``stem`` (the file name without .yaml) must then equal its ``name``."""
    try:
        document = read_yaml(text)
    except yaml.YAMLError as exc:
        raise ScenarioError.of([syntax_issue(source, exc)]) from exc
    issues = [Issue(source, line_of(document.lines, loc), field_path(loc), "duplicate key")
              for loc in document.duplicates]
    try:
        scenario = parse_scenario(document.data, source=source, lines=document.lines, stem=stem)
    except ScenarioError as exc:
        raise ScenarioError.of(sorted(issues + exc.issues, key=lambda i: i.line)) from exc
    if issues:
        raise ScenarioError.of(issues)
    return scenario


def parse_scenario(data: Any, *, source: str = "<scenario>", lines: dict[Loc, int] | None = None,
                   stem: str | None = None) -> Scenario:
    """A scenario from a parsed document (YAML or JSON); raises ``ScenarioError`` with every problem found."""
    lines = lines or {}
    if not isinstance(data, dict):
        what = "an empty document" if data is None else f"a {type(data).__name__}"
        raise ScenarioError.of([Issue(source, 1, "(document)", f"a scenario is a mapping of keys (name, "
                                                                f"description, ...), not {what}")])
    expectations, problems = parse_expectations(data.get("expectations"))
    problems += _document_problems(data, stem)
    scenario: Scenario | None = None
    try:
        scenario = Scenario.model_validate({**data, "expectations": expectations})
    except ValidationError as exc:
        reported = {loc for loc, _ in problems}
        problems += [(loc, _message(err)) for err in exc.errors(include_url=False)
                     if (loc := tuple(err["loc"])) not in reported]
    if problems:
        issues = [Issue(source, line_of(lines, loc), field_path(loc), message) for loc, message in problems]
        raise ScenarioError.of(sorted(issues, key=lambda i: i.line))
    assert scenario is not None
    return scenario


def _document_problems(data: dict[str, Any], stem: str | None) -> list[tuple[Loc, str]]:
    """What each model accepts alone but the scenario cannot mean, checked on the raw document so that they are
    reported together with every other error: the name against the file, policy durations, time going back,
    fault rules for operations that do not exist."""
    problems: list[tuple[Loc, str]] = []
    if stem is not None and isinstance(data.get("name"), str) and data["name"] != stem:
        problems.append((("name",), f"must equal the file name {stem!r} (the name is how the scenario is found)"))
    policy = data.get("policy")
    for part, body in (policy.items() if isinstance(policy, dict) else ()):
        if isinstance(body, dict) and isinstance(body.get("after"), str):
            problems += _duration_problem(body["after"], ("policy", part, "after"))
    return problems + _timeline_problems(data.get("timeline")) + _fault_problems(data.get("faults"))


def _duration_problem(value: Any, loc: Loc) -> list[tuple[Loc, str]]:
    try:
        parse_duration(value)
    except ValueError as exc:
        return [(loc, str(exc))]
    return []


def _timeline_problems(timeline: Any) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    latest = 0.0
    for index, step in enumerate(timeline if isinstance(timeline, list) else ()):
        try:
            at = parse_duration(step["at"])
        except (TypeError, KeyError, ValueError):
            continue  # no offset, or one the step model reports
        if at < latest:
            problems.append((("timeline", index, "at"),
                             f"offsets only move forward: {at:g} s is before {latest:g} s of an earlier step"))
        latest = max(latest, at)
    return problems


def _fault_problems(rules: Any) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    known = partner_operation_ids()
    for index, rule in enumerate(rules if isinstance(rules, list) else ()):
        match = rule.get("match") if isinstance(rule, dict) else None
        operation_id = match.get("operationId") if isinstance(match, dict) else None
        if isinstance(operation_id, str) and operation_id not in known:
            close = difflib.get_close_matches(operation_id, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append((("faults", index, "match", "operationId"),
                             f"no partner API operation is called {operation_id!r}{hint}"))
    return problems
