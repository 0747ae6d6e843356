"""Case results and their reports: the generic ``CaseResult``, a JUnit XML writer and the one-line summary.

Shared by every harness tool that judges cases (receiver check, scenario runner, conformance), so CI systems see one
report shape. Text that cannot appear in XML 1.0 (control characters from a receiver's response, say) is replaced,
so the file always parses.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Everything XML 1.0 forbids: C0 controls except tab/LF/CR, surrogates, U+FFFE/U+FFFF.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass
class CaseResult:
    name: str
    classname: str
    passed: bool
    message: str = ""
    evidence: str = ""
    duration_s: float = 0.0
    skipped: bool = False

    @property
    def failed(self) -> bool:
        return not self.passed and not self.skipped

    @property
    def status(self) -> str:
        return "SKIP" if self.skipped else "PASS" if self.passed else "FAIL"


@dataclass(frozen=True)
class Counts:
    passed: int
    failed: int
    skipped: int

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped


def count(cases: Iterable[CaseResult]) -> Counts:
    listed = list(cases)
    skipped = sum(case.skipped for case in listed)
    failed = sum(case.failed for case in listed)
    return Counts(passed=len(listed) - skipped - failed, failed=failed, skipped=skipped)


def summary_line(cases: Iterable[CaseResult]) -> str:
    """``"12 passed, 1 failed"``, with ``", 2 skipped"`` appended only when something was skipped."""
    counts = count(cases)
    line = f"{counts.passed} passed, {counts.failed} failed"
    return f"{line}, {counts.skipped} skipped" if counts.skipped else line


def write_junit(path: Path, suite: str, cases: list[CaseResult]) -> None:
    """One ``<testsuite>`` with totals, one ``<testcase>`` per case; a failure carries its evidence as text."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = ET.ElementTree(_suite(suite, cases))
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)


def _suite(suite: str, cases: list[CaseResult]) -> ET.Element:
    counts = count(cases)
    root = ET.Element("testsuite", {
        "name": _clean(suite), "tests": str(counts.total), "failures": str(counts.failed), "errors": "0",
        "skipped": str(counts.skipped), "time": _seconds(sum(case.duration_s for case in cases)),
    })
    for case in cases:
        root.append(_testcase(case))
    return root


def _testcase(case: CaseResult) -> ET.Element:
    element = ET.Element("testcase", {"name": _clean(case.name), "classname": _clean(case.classname),
                                      "time": _seconds(case.duration_s)})
    if case.skipped:
        ET.SubElement(element, "skipped", {"message": _clean(case.message)})
    elif not case.passed:
        failure = ET.SubElement(element, "failure", {"message": _clean(case.message or "failed")})
        failure.text = _clean(case.evidence)
    if case.evidence and not case.failed:
        ET.SubElement(element, "system-out").text = _clean(case.evidence)
    return element


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\N{REPLACEMENT CHARACTER}", text)
