"""The HTML scenario report: the sequence diagram on the simulated clock, verdicts pinned to the rows that decided
them, the JUnit evidence, from the CLI (`scenario run --html`) and from the pytest plugin (`--zest-html-dir`)."""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from html import unescape
from pathlib import Path

import pytest
from click.testing import CliRunner
from support import PARTNER_HELPERS, QUIET

from mock_server.cli import main
from mock_server.harness.expectations import Evidence, judge
from mock_server.harness.report_html import render_html

ROOT = Path(__file__).resolve().parent.parent
CARELESS = ROOT / "examples" / "partner" / "careless_partner.py"
T0 = "2026-05-07T12:00:00.000Z"
pytest_plugins = ["pytester"]


def _call(seq: int, status: int, at: str = T0, *, key: str = "k1", fault: str | None = None,
          path: str = "/v1/spv-requests") -> dict[str, object]:
    return {"seq": seq, "at": at, "wallAt": float(seq), "method": "POST", "path": path,
            "operationId": "createSpvRequest", "clientId": "dev-partner", "idempotencyKey": key, "bodyHash": "h",
            "status": status, "durationMs": 1.0, "fault": fault}


def _evidence() -> Evidence:
    events = [{"eventId": "wde_1", "eventType": "spv_request.created", "occurredAt": T0,
               "data": {"spvRequestSlug": "svr_1"}},
              {"eventId": "wde_2", "eventType": "spv_request.completed", "occurredAt": "2026-05-07T14:00:00.000Z",
               "data": {"spvRequestSlug": "svr_1"}}]
    attempts = [{"deliveryId": "dlv_1", "eventId": "wde_1", "attempt": 1, "at": T0, "statusCode": None,
                 "error": "connection refused", "durationMs": 2.0, "outcome": "failed", "fault": None},
                {"deliveryId": "dlv_1", "eventId": "wde_1", "attempt": 2, "at": "2026-05-07T12:00:30.000Z",
                 "statusCode": 200, "error": None, "durationMs": 9.0, "outcome": "delivered", "fault": "duplicate"}]
    requests = [_call(1, 503, fault="error#1"), _call(2, 201, key="k2"),
                _call(3, 201, "2026-05-07T14:00:00.000Z", path="/v1/<script>alert(1)</script>")]
    return Evidence(client_id="dev-partner", requests=requests, attempts=attempts, events=events, dead=[],
                    processed=[], keyed_writes=frozenset({"createSpvRequest"}), started_at=T0)


def _svg(page: str) -> ET.Element:
    return ET.fromstring(page[page.index("<svg"):page.index("</svg>") + 6])


def _row_y(svg: ET.Element, key: str) -> float:
    (group,) = [g for g in svg.iter("{http://www.w3.org/2000/svg}g") if g.get("id") == f"msg-{key}"]
    return float(group.find("{http://www.w3.org/2000/svg}rect").get("y"))  # type: ignore[union-attr]


def test_the_diagram_orders_rows_on_the_simulated_clock_and_pins_the_verdicts() -> None:
    evidence = _evidence()
    retries = judge("idempotent_retries", {}, evidence, "unit")
    acknowledged = judge("webhooks_acknowledged", {}, evidence, "unit")
    assert retries.failed and acknowledged.failed  # a new key on the retry; a refused connection
    page = render_html("zest-mock scenario unit", [retries, acknowledged], evidence, seed=7)
    svg = _svg(page)  # well-formed, so every text was escaped

    order = ["req-1", "req-2", "att-dlv_1-1", "att-dlv_1-2", "evt-wde_2", "req-3"]
    ys = [_row_y(svg, key) for key in order]
    assert ys == sorted(ys), dict(zip(order, ys, strict=True))
    texts = ["".join(t.itertext()) for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert "T+0s" in texts and "T+30s" in texts and "T+2h00m00s" in texts
    assert "1h59m30s later" in texts  # the gap between the retry attempt and the approval
    assert "approve svr_1" in texts
    assert any(t.startswith("⚡ POST /v1/spv-requests → 503 (error#1)") for t in texts)
    assert any("→ connection refused" in t for t in texts) and any("(duplicate)" in t for t in texts)

    def pins(key: str) -> list[str]:
        (group,) = [g for g in svg.iter("{http://www.w3.org/2000/svg}g") if g.get("id") == f"msg-{key}"]
        return ["".join(t.itertext()) for t in group.iter("{http://www.w3.org/2000/svg}text")
                if "pin" in (t.get("class") or "")]

    assert pins("req-1") == ["✗ idempotent_retries"] and pins("req-2") == ["✗ idempotent_retries"]
    assert pins("att-dlv_1-1") == ["✗ webhooks_acknowledged"] and pins("req-3") == []
    assert 'href="#msg-req-1"' in page and 'id="case-idempotent_retries"' in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page)  # self-contained


def test_cli_writes_the_report_with_the_junit_evidence(tmp_path: Path) -> None:
    html, junit = tmp_path / "run.html", tmp_path / "run.xml"
    result = CliRunner().invoke(main, ["scenario", "run", "api_flaky_5xx", "--html", str(html), "--junit", str(junit),
                                       "--", sys.executable, str(CARELESS)])
    assert result.exit_code == 1, result.output
    assert f"HTML report in {html}" in result.stdout
    page = html.read_text()
    assert "<svg" in page and "FAILED" in page and "Zest admin (simulated)" in page
    _svg(page)
    text = unescape(page)
    for case in ET.parse(junit).getroot().iter("testcase"):
        assert f'id="case-{case.get("name")}"' in page
        failure = case.find("failure")
        if failure is not None:
            assert failure.get("message") in text and (failure.text or "").strip() in text
    assert re.search(r'<tr id="case-idempotent_retries" class="fail">.*?href="#msg-req-\d+"', page, re.S)


FAILING = '''
from helpers import create


def test_creates_and_fails(zest_mock):
    create(zest_mock)
    assert False, "the partner expected an approval"


def test_passes(zest_mock):
    pass


def test_fails_without_the_mock():
    assert False
'''


def test_the_pytest_plugin_writes_a_report_for_a_failed_test_that_used_the_mock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(helpers=PARTNER_HELPERS, test_partner=FAILING)
    result = pytester.runpytest_subprocess(*QUIET, "--zest-html-dir", "reports")
    result.assert_outcomes(passed=1, failed=2)
    (written,) = sorted((pytester.path / "reports").iterdir())
    assert written.name == "test_partner.py_test_creates_and_fails.html"
    page = unescape(written.read_text())
    assert "POST /v1/spv-requests → 201" in page and "the partner expected an approval" in page
    assert "POST /v1/oauth2/tokens → 201" in page
    result.stdout.fnmatch_lines(["*zest-mock report*", f"*HTML report: {Path('reports') / written.name}*"])
