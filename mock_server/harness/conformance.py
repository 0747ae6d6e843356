"""``run_conformance``: the contract checks of ``contract_tests/`` against any running server, over HTTP.

The target is judged against a contract it does not supply: by default the mock's own document, built in process
from its operation declarations; or a published document (``spec``). Either way the documented exceptions
(``contract_exceptions``) are written in first and reported. Every operation runs the examples, coverage and
fuzzing phases (seeded, ``max_examples`` fuzzed cases, at most ``requests_per_operation`` requests including the
checks' own probes) with these checks: no server error; status code, content type, headers and body as declared;
negative data rejected (with the envelope, as the declared error responses say); missing required headers and
missing or invalid credentials refused; an undeclared method answered 405.

A mock (``GET /_mock/clock`` answers JSON with ``mode``) first gets an approved SPV, investors, subscriptions and
pending SPV requests through its control plane, so positive cases reach 2xx. Any other server (a Zest
environment) only gets what the judged document shows safe to send (``documents.safe_to_send``: reads, calls
without credentials, creates keyed by an Idempotency-Key) unless ``allow_writes``: cancels and uploads are skipped,
and the probes for undeclared methods only use safe methods.

Needs schemathesis (``pip install 'zest-mock[conformance]'``); without it ``ConformanceError`` says so.
"""

from __future__ import annotations

import importlib.util
import time
import unittest
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from mock_server.clock import parse_instant
from mock_server.dev_partner import dev_partner_private_key
from mock_server.harness import documents
from mock_server.harness.assertions import exchange_assertion, mint_assertion
from mock_server.harness.contract_exceptions import AppliedException, apply_exceptions
from mock_server.harness.control_client import ControlClient, ControlError
from mock_server.harness.junit import CaseResult, summary_line
from mock_server.presets import DEV_CLIENT_ID

INSTALL_HINT = "zest-mock conformance needs schemathesis: pip install 'zest-mock[conformance]'"
CLASSNAME = "zest-mock conformance"
EXCEPTION_CLASSNAME = "zest-mock conformance.documented-exceptions"
DEFAULT_MAX_EXAMPLES = 10
DEFAULT_SEED = 20260507
SAFE_PROBE_METHODS = ["get", "trace"]  # undeclared-method probes against a server we may not write to


class ConformanceError(Exception):
    """The run could not start: schemathesis missing, target unreachable, no credentials."""


@dataclass
class Target:
    base_url: str
    is_mock: bool
    token: str
    dictionaries: dict[str, list[str]] = field(default_factory=dict)
    setup_requests: int = 0  # detecting a mock, the token, seeding or harvesting


@dataclass
class ConformanceReport:
    base_url: str
    is_mock: bool
    spec: str
    seed: int
    exceptions: list[AppliedException]
    cases: list[CaseResult]  # one per operation, in document order
    requests_sent: int = 0

    @property
    def exception_cases(self) -> list[CaseResult]:
        """Each exception in effect, as a passing testcase: visible in CI, never silently excluded."""
        return [CaseResult(f"{applied.exception.id} {applied.exception.title}", EXCEPTION_CLASSNAME, True,
                           evidence=_exception_evidence(applied)) for applied in self.exceptions]

    @property
    def all_cases(self) -> list[CaseResult]:
        return [*self.exception_cases, *self.cases]

    @property
    def ok(self) -> bool:
        return not any(case.failed for case in self.cases)

    @property
    def summary(self) -> str:
        return f"{summary_line(self.cases)} ({len(self.cases)} operations, {self.requests_sent} requests)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseUrl": self.base_url, "target": "mock" if self.is_mock else "other", "spec": self.spec,
            "seed": self.seed, "ok": self.ok, "summary": self.summary, "requestsSent": self.requests_sent,
            "exceptions": [applied.to_dict() for applied in self.exceptions],
            "operations": [{"name": c.name, "status": c.status, "message": c.message, "evidence": c.evidence,
                            "durationS": round(c.duration_s, 3)} for c in self.cases],
        }


def _exception_evidence(applied: AppliedException) -> str:
    e = applied.exception
    return "\n".join([f"operations: {e.operations}", f"published: {e.published}", f"documented: {e.documented}",
                      f"reason: {e.reason}", f"treatment: {e.treatment}", f"this run: {applied.changes_text}"])


def run_conformance(
    base_url: str, *, spec: dict[str, Any] | None = None, spec_label: str | None = None, token: str | None = None,
    client_id: str | None = None, private_key_pem: str | None = None, audience: str | None = None,
    allow_writes: bool = False, max_examples: int = DEFAULT_MAX_EXAMPLES, seed: int = DEFAULT_SEED,
    requests_per_operation: int | None = None, timeout: float = 10.0,
    on_exceptions: Callable[[list[AppliedException]], None] | None = None,
    on_result: Callable[[CaseResult], None] | None = None,
) -> ConformanceReport:
    """Judge the server at ``base_url`` against ``spec`` (default: the mock's own document).

    ``on_exceptions`` gets the exceptions in effect before anything is sent; ``on_result`` each operation's
    result as it finishes.
    """
    require_schemathesis()
    base_url = base_url.rstrip("/")
    document, applied = apply_exceptions(spec if spec is not None else mock_document())
    if on_exceptions is not None:
        on_exceptions(applied)
    target = _connect(base_url, token=token, client_id=client_id, private_key_pem=private_key_pem,
                      audience=audience or base_url)
    report = ConformanceReport(base_url, target.is_mock, spec_label or "the mock's own document", seed, applied, [])
    run = _Run(document, target, allow_writes=allow_writes or target.is_mock, max_examples=max_examples, seed=seed,
               requests_per_operation=requests_per_operation or default_budget(max_examples), timeout=timeout)
    for case in run.operations():
        report.cases.append(case)
        if on_result is not None:
            on_result(case)
    report.requests_sent = target.setup_requests + run.requests_sent
    return report


def require_schemathesis() -> None:
    if importlib.util.find_spec("schemathesis") is None:
        raise ConformanceError(INSTALL_HINT)


def default_budget(max_examples: int) -> int:
    """Requests per operation: the coverage phase's cases plus ``max_examples`` fuzzed ones, with their probes."""
    return 150 + 4 * max_examples


def mock_document() -> dict[str, Any]:
    """The mock's partner document, the one it serves at ``/openapi.json``."""
    from mock_server.app import partner_document  # late: the app is only needed when no spec is given

    return partner_document()


# ---- the target: mock or not, credentials, resources to aim at ----------------------------------------------------

def _connect(base_url: str, *, token: str | None, client_id: str | None, private_key_pem: str | None,
             audience: str) -> Target:
    sent = [0]

    def count(_: httpx.Response) -> None:
        sent[0] += 1

    with httpx.Client(base_url=base_url, timeout=10.0, event_hooks={"response": [count]}) as http:
        mock_now = _mock_clock(http)
        is_mock = mock_now is not None
        if (client_id is None) != (private_key_pem is None):
            raise ConformanceError("give --client-id and --private-key together")
        if client_id is None and is_mock:
            client_id, private_key_pem = DEV_CLIENT_ID, dev_partner_private_key()
        now = parse_instant(mock_now).timestamp() if mock_now else time.time()
        if token is None:
            token = _token(http, base_url, is_mock, client_id, private_key_pem, audience, now)
        headers = {"Authorization": f"Bearer {token}"}
        dictionaries = _seed(http, headers) if is_mock else _harvest(http, headers)
    if client_id is not None and private_key_pem is not None:
        dictionaries["assertions"] = [mint_assertion(client_id, private_key_pem, audience, now=now, lifetime=300)]
    return Target(base_url, is_mock, token, dictionaries, setup_requests=sent[0])


def _mock_clock(http: httpx.Client) -> str | None:
    """Simulated now when the target is a zest-mock (its control plane answers), else None."""
    try:
        response = http.get("/_mock/clock")
    except httpx.TransportError as exc:
        raise ConformanceError(f"cannot reach {http.base_url}: {exc}") from exc
    try:
        body = response.json()
    except ValueError:
        return None
    if response.status_code == 200 and isinstance(body, dict) and "mode" in body:
        return str(body.get("now") or "") or None
    return None


def _token(http: httpx.Client, base_url: str, is_mock: bool, client_id: str | None, private_key_pem: str | None,
           audience: str, now: float) -> str:
    if client_id is None or private_key_pem is None:
        raise ConformanceError("a server that is not a zest-mock needs --token, or --client-id and --private-key")
    if is_mock and client_id == DEV_CLIENT_ID:  # the mock's audience may not be the URL it is reached at
        try:
            return str(ControlClient(base_url, http=http).token(client_id)["accessToken"])
        except ControlError:
            pass
    response = exchange_assertion(http, mint_assertion(client_id, private_key_pem, audience, now=now))
    if response.status_code // 100 != 2:
        raise ConformanceError(f"token exchange refused: {response.status_code} {response.text}")
    return str(response.json()["accessToken"])


def _seed(http: httpx.Client, headers: dict[str, str]) -> dict[str, list[str]]:
    from mock_server.harness.st_support import seed_mock

    try:
        return seed_mock(http, headers)
    except (httpx.HTTPError, ControlError, KeyError, ValueError) as exc:
        raise ConformanceError(f"could not create the resources the run aims at on the mock: {exc}") from exc


def _harvest(http: httpx.Client, headers: dict[str, str]) -> dict[str, list[str]]:
    """Read-only: slugs of the caller's existing SPV requests, so getSpvRequest can reach its 200."""
    try:
        response = http.get("/v1/spv-requests", params={"perPage": 10}, headers=headers)
        documents = response.json().get("documents") if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return {}
    slugs = [str(d["spvRequestSlug"]) for d in documents or [] if isinstance(d, dict) and d.get("spvRequestSlug")]
    return {"spv_requests": slugs} if slugs else {}



# ---- the schemathesis run -----------------------------------------------------------------------------------------

def _checks() -> list[Any]:
    from schemathesis import checks

    return [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
            checks.response_headers_conformance, checks.response_schema_conformance, checks.negative_data_rejection,
            checks.missing_required_header, checks.unsupported_method]


AUTH_PROBES = 2  # ignored_auth re-sends a 2xx case once without credentials and once with invalid ones


def _ignored_auth_once(budget: _Budget, token: str) -> Callable[..., Any]:
    """``ignored_auth``, probing each operation once, on its first 2xx to our credentials (as ``st run`` does).

    Its probes leave on their own sessions, so they are counted here, into the operation's request budget. A 2xx
    to a request without our credentials (none, or generated ones) is judged every time; that sends nothing.
    """
    from schemathesis import checks

    ours = f"Bearer {token}"

    def check(ctx: Any, response: Any, case: Any) -> bool | None:
        if not 200 <= response.status_code < 300:
            return None
        if response.request.headers.get("Authorization") == ours:
            if budget.auth_confirmed:
                return None
            budget.auth_confirmed = True
            budget.used += AUTH_PROBES
        return checks.ignored_auth(ctx, response, case)

    check.__name__ = "ignored_auth"
    return check


def _bearer_scheme(document: dict[str, Any]) -> str:
    schemes = document.get("components", {}).get("securitySchemes", {})
    found = [name for name, s in schemes.items() if s.get("type") == "http" and s.get("scheme", "").lower() == "bearer"]
    return found[0] if found else "HTTPBearer"


class _Budget:
    """One operation's requests so far, against its limit, and what went wrong."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used, self.cases = limit, 0, 0
        self.counted = 0  # of ``used``, the requests the session already counted
        self.failures: dict[str, tuple[int, str, str]] = {}  # title -> (count, first message, first full report)
        self.stopped = self.auth_confirmed = False

    @property
    def exhausted(self) -> bool:
        return self.stopped or self.used >= self.limit

    def fail(self, title: str, message: str, report: str = "") -> None:
        count, first, full = self.failures.get(title, (0, message, report or message))
        self.failures[title] = (count + 1, first, full)

    def result(self, name: str, duration: float) -> CaseResult:
        tail = f"{self.cases} cases, {self.used} requests" + (
            f" (the budget of {self.limit} ran out)" if self.used >= self.limit else "")
        if not self.failures:
            return CaseResult(name, CLASSNAME, True, evidence=tail, duration_s=duration)
        (title, (_, message, report)), *_ = self.failures.items()
        kinds = "\n".join(f"- {t} (x{count}): {first}" for t, (count, first, _) in self.failures.items())
        return CaseResult(name, CLASSNAME, False, message=(f"{title}: {message}" if message else title)[:300],
                          evidence=f"{tail}\nfailures:\n{kinds}\n\nfirst failure:\n{report[:4000]}",
                          duration_s=duration)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


class _Run:
    """The operations of one document, run against one target with schemathesis's examples/coverage/fuzzing."""

    def __init__(self, document: dict[str, Any], target: Target, *, allow_writes: bool, max_examples: int,
                 seed: int, requests_per_operation: int, timeout: float) -> None:
        import requests
        import schemathesis

        from mock_server.harness import st_support

        st_support.register_media_types()
        data: dict[str, Any] = {"seed": seed, "cache": {"enabled": False}, "suppress-health-check": ["all"],
                                "generation": {"max-examples": max_examples, "database": "none"}}
        if not allow_writes:
            data["phases"] = {"coverage": {"unexpected-methods": SAFE_PROBE_METHODS}}
        config = st_support.project_config(data, token=target.token, dictionaries=target.dictionaries,
                                           scheme=_bearer_scheme(document), parameters=st_support.PARAMETERS)
        self.schema = schemathesis.openapi.from_dict(document, config=config)
        self.narrowed = st_support.narrowed_checks(document, judge_positive=False)
        self.prepare_case = st_support.prepare_case
        self.target, self.allow_writes, self.seed = target, allow_writes, seed
        self.safe = documents.safe_to_send(document)
        self.limit, self.timeout = requests_per_operation, timeout
        self.checks = _checks()
        self.session = requests.Session()
        self.session.hooks["response"].append(self._count)
        self.requests_sent = 0

    def _count(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        self.requests_sent += 1
        return response

    def operations(self) -> Iterator[CaseResult]:
        from schemathesis.core.result import Ok

        try:
            for result in self.schema.get_all_operations():
                if isinstance(result, Ok):
                    yield self._operation(result.ok())
                else:
                    error = result.err()
                    yield CaseResult(str(getattr(error, "path", "") or "operation"), CLASSNAME, False,
                                     message=f"unusable in the document: {error}")
        finally:
            self.session.close()

    def _operation(self, operation: Any) -> CaseResult:
        name = f"{operation.method.upper()} {operation.path}"
        operation_id = str(operation.definition.raw.get("operationId", name))
        label = f"{operation_id} ({name})"
        if not self.allow_writes and operation_id not in self.safe:
            return CaseResult(label, CLASSNAME, False, skipped=True,
                              message="a write, skipped on a server that is not a zest-mock (--allow-writes runs it)")
        budget, started = _Budget(self.limit), time.perf_counter()
        for mode in ("examples", "coverage", "fuzzing"):
            if budget.exhausted:
                break
            try:
                self._phase(operation, operation_id, mode, budget)()
            except unittest.SkipTest:  # the phase has no cases for this operation (say, no examples)
                continue
            except Exception as exc:  # generation itself failed: report it, go on with the next phase
                budget.fail(f"{mode} phase could not run", f"{type(exc).__name__}: {exc}")
        self.requests_sent += budget.used - budget.counted
        return budget.result(label, time.perf_counter() - started)

    def _phase(self, operation: Any, operation_id: str, mode: str, budget: _Budget) -> Callable[[], None]:
        from schemathesis.generation import derive_operation_seed
        from schemathesis.generation.hypothesis.builder import HypothesisTestConfig, HypothesisTestMode, create_test

        project = self.schema.config
        test_mode = HypothesisTestMode(mode)
        return create_test(operation=operation, test_func=self._case_runner(operation_id, budget), config=(
            HypothesisTestConfig(
                project=project, modes=[test_mode], apply_ci_profile=False,
                settings=project.get_hypothesis_settings(operation=operation, phase=mode, apply_ci_profile=False),
                explicit_setting_names=project.explicit_hypothesis_settings(operation=operation, phase=mode),
                seed=derive_operation_seed(self.seed, operation.label))))

    def _case_runner(self, operation_id: str, budget: _Budget) -> Callable[[Any], None]:
        import requests
        from schemathesis.errors import FailureGroup

        excluded, additional = self.narrowed.get(operation_id, ([], []))
        additional = [*additional, _ignored_auth_once(budget, self.target.token)]

        def run_case(case: Any) -> None:
            if budget.exhausted:
                return
            self.prepare_case(case)
            before = self.requests_sent
            budget.cases += 1
            try:
                case.call_and_validate(base_url=self.target.base_url, session=self.session, checks=self.checks,
                                       excluded_checks=excluded, additional_checks=additional, timeout=self.timeout)
            except FailureGroup as exc:
                for failure in exc.exceptions:
                    budget.fail(failure.title, _first_line(failure.message), exc.message)
            except requests.ConnectionError as exc:
                budget.fail("Connection failed", str(exc))
                budget.stopped = True
            except Exception as exc:  # a transport or serialisation error: evidence, not a crash of the run
                budget.fail(type(exc).__name__, _first_line(str(exc)), f"{type(exc).__name__}: {exc}")
            finally:
                budget.used += self.requests_sent - before
                budget.counted += self.requests_sent - before

        return run_case
