"""``zest-mock conformance`` passes a correct server and fails a broken one, over real HTTP.

- a live mock passes, and the JUnit report has one testcase per operation plus one per documented exception;
- a broken server (a wrong shape for one read, a 500 for another) fails, with the evidence in the report, and,
  not being a mock, only ever sees reads and creates (plus safe-method probes): no cancel, no upload;
- judged against the published document (``zest-openapi.json``), a conformant mock passes because the documented
  exceptions are applied, and the run prints them;
- without schemathesis the command says how to install it.
"""

from __future__ import annotations

import importlib.util
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from support import live_server, settings

from mock_server.app import create_app, partner_document
from mock_server.cli import main
from mock_server.harness import documents
from mock_server.harness.contract_exceptions import EXCEPTIONS

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = ROOT.parent / "shared" / "reference" / "zest-openapi.json"  # ../shared from the repository root
EXAMPLES = "3"  # fuzzed cases per operation: the examples and coverage phases carry most of the weight
OPERATIONS = len(documents.operations(partner_document()))  # every partner operation the mock serves
CREATE_PATHS = {"/v1/oauth2/tokens", "/v1/spv-requests", "/v1/investors"}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}


def _mock(url: str) -> Starlette:
    return create_app(settings(audience=url))


def _conformance(*args: str) -> Any:
    return CliRunner().invoke(main, ["conformance", "--max-examples", EXAMPLES, *args])


def _testcases(path: Path) -> list[ET.Element]:
    return list(ET.parse(path).getroot().iter("testcase"))


def test_a_live_mock_passes_and_the_junit_lists_operations_and_exceptions(tmp_path: Path) -> None:
    junit = tmp_path / "conformance.xml"
    with live_server(_mock) as (url, _):
        result = _conformance("--base-url", url, "--junit", str(junit))
    assert result.exit_code == 0, result.output
    assert f"{OPERATIONS} passed, 0 failed" in result.output
    cases = _testcases(junit)
    exceptions = [c for c in cases if c.get("classname", "").endswith("documented-exceptions")]
    operations = [c for c in cases if c not in exceptions]
    assert len(operations) == OPERATIONS
    assert [c.get("name", "").split()[0] for c in exceptions] == [e.id for e in EXCEPTIONS]
    assert not any(c.find("failure") is not None or c.find("skipped") is not None for c in cases)
    assert all("treatment:" in (c.findtext("system-out") or "") for c in exceptions)  # visible in CI, with reasons


def _broken_app(seen: list[tuple[str, str]]) -> ASGIApp:
    """Not a mock: a wrong shape for getSpvRequest, a 500 for listSpvRequests, a 404 envelope for everything else."""

    async def answer(request: Request) -> JSONResponse:
        path = request.url.path
        if request.method == "GET" and re.fullmatch(r"/v1/spv-requests/[^/]+", path):
            return JSONResponse({"spvRequestSlug": 42, "status": "pending"})  # a number, and required fields missing
        if request.method == "GET" and path == "/v1/spv-requests":
            return JSONResponse({"code": "internal_error", "detail": "boom"}, status_code=500)
        return JSONResponse({"code": "not_found", "detail": f"no {path}"}, status_code=404)

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "QUERY"]
    app = Starlette(routes=[Route("/{path:path}", answer, methods=methods)])

    async def recording(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            seen.append((scope["method"], scope["path"]))
        await app(scope, receive, send)

    return recording


def test_a_broken_server_fails_with_evidence_and_only_sees_reads_and_creates(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []
    junit = tmp_path / "broken.xml"
    with live_server(lambda _: _broken_app(seen)) as (url, _):  # type: ignore[arg-type, return-value]
        result = _conformance("--base-url", url, "--token", "any-token", "--junit", str(junit))
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("FAIL getSpvRequest") for line in lines), result.output
    assert any(line.startswith("FAIL listSpvRequests") for line in lines), result.output
    failures = {c.get("name", "").split()[0]: c.find("failure") for c in _testcases(junit)}
    wrong_shape, server_error = failures["getSpvRequest"], failures["listSpvRequests"]
    assert wrong_shape is not None and server_error is not None
    assert "Response violates schema" in (wrong_shape.text or ""), wrong_shape.text
    assert "curl" in (wrong_shape.text or "") and "spvRequestSlug" in (wrong_shape.text or "")
    assert "Server error" in (server_error.text or ""), server_error.text
    # Not a mock, no --allow-writes: cancel and uploads are skipped and never sent; writes are creates only.
    skipped = {line.split()[1] for line in lines if line.startswith("SKIP")}
    assert skipped == {"cancelSpvRequest", "uploadSubscriptionForm", "uploadFundingReceipt"}
    unsafe = {(method, path) for method, path in seen if method not in SAFE_METHODS}
    assert unsafe, "the creates were exercised"
    assert all(method == "POST" and (path in CREATE_PATHS or re.fullmatch(r"/v1/spvs/[^/]+/subscriptions", path))
               for method, path in unsafe), sorted(unsafe)
    assert not any("/subscription/" in path for _, path in seen)


@pytest.mark.skipif(not PUBLISHED.is_file(), reason=f"the published document is not at {PUBLISHED}")
def test_the_published_document_with_its_documented_exceptions_passes_a_conformant_mock(tmp_path: Path) -> None:
    junit = tmp_path / "published.xml"
    with live_server(_mock) as (url, _):
        result = _conformance("--base-url", url, "--spec", str(PUBLISHED), "--junit", str(junit))
    assert result.exit_code == 0, result.output
    assert f"{OPERATIONS} passed, 0 failed" in result.output
    for exception in EXCEPTIONS:
        assert f"  {exception.id} {exception.title}:" in result.output
    applied = {c.get("name", "").split()[0]: c.findtext("system-out") or "" for c in _testcases(junit)
               if c.get("classname", "").endswith("documented-exceptions")}
    assert "400 envelope added to" in applied["C5"] and "TokenResponse gains tokenType, expiresIn" in applied["C2"]


def test_the_published_document_without_the_exceptions_fails_the_mock() -> None:
    """The exceptions are what make the difference: the same run without them fails (undocumented 400s...)."""
    if not PUBLISHED.is_file():
        pytest.skip(f"the published document is not at {PUBLISHED}")
    from mock_server.harness import conformance

    def unpatched(document: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
        return json.loads(json.dumps(document)), []

    with pytest.MonkeyPatch.context() as patch, live_server(_mock) as (url, _):
        patch.setattr(conformance, "apply_exceptions", unpatched)
        report = conformance.run_conformance(url, spec=json.loads(PUBLISHED.read_text()), max_examples=1)
    failed = {case.name.split()[0]: case.message for case in report.cases if case.failed}
    assert "Undocumented status code" in failed["listSpvRequests"]
    assert "Undocumented Content-Type" in failed["swagger"]


def test_without_schemathesis_the_command_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "schemathesis" else find_spec(name, *args))
    result = _conformance("--base-url", "http://127.0.0.1:9")
    assert result.exit_code == 1
    assert "pip install 'zest-mock[conformance]'" in result.output
