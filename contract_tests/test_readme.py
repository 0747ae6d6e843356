"""README and behaviour agree: its Python examples pass as written, its shell blocks (the curl tour and the control
plane over HTTP) run as written against a mock served the way `make mock` serves it, and every command it lists
exists."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner

from mock_server.cli import main

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
QUIET = ("-p", "no:schemathesis", "-p", "no:hypothesispytest", "-p", "no:anyio")


def section(title: str) -> str:
    return README.split(f"\n## {title}\n")[1].split("\n## ")[0]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


@pytest.mark.parametrize("index", [0, 1], ids=["zest_mock", "zest_clock"])
def test_the_pytest_examples_pass_as_written(pytester: pytest.Pytester, index: int) -> None:
    examples = blocks(section("Use from pytest (Python partners)"), "python")
    assert len(examples) == 2
    pytester.makepyfile(test_readme_example=examples[index])
    result = pytester.runpytest_subprocess(*QUIET)
    result.assert_outcomes(passed=1)


# ---- the shell blocks, against `zest-mock serve --port $PORT --admin-policy demo` (what `make mock` runs) ---------

@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if shutil.which("curl") is None:
        pytest.skip("the README's shell blocks use curl")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path_factory.mktemp("readme") / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "mock_server", "serve", "--port", str(port),
                                    "--admin-policy", "demo"], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60  # a hang guard for a loaded machine, not a verdict
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/public/hc", timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"zest-mock serve did not come up: {log.read_text()}")
                time.sleep(0.05)  # waiting for a subprocess to bind, not for work under test
        yield str(port)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def run_shell(block: str, **env: str) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # wherever this suite's venv is
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PATH": path, **env})
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def test_the_curl_tour_runs_as_written(served: str) -> None:
    (tour,) = blocks(section("A tour with curl"), "sh")
    assert "uuidgen" not in tour and "8080" not in tour.replace("PORT=${PORT:-8080}", "")
    done = run_shell(tour, PORT=served)
    lines = done.stdout.splitlines()
    assert lines[0] == f"private key     {ROOT / 'mock_server' / 'data' / 'dev_partner' / 'ed25519-private.pem'}"
    assert any(re.fullmatch(r"svr_\w+ approved \(vehicle \w+\)", line) for line in lines), lines
    assert any(" spv_request.completed dev-partner" in line for line in lines)
    assert lines[-1].startswith("dev-partner webhooks go to http://127.0.0.1:3000/zest/webhooks")


def test_the_control_plane_curl_lines_run_as_written(served: str) -> None:
    (control,) = blocks(section("Control plane over HTTP"), "sh")
    url = f"http://localhost:{served}"
    run_shell(control, ZEST_MOCK_URL=url, **_control_plane_subjects(url))
    state = httpx.get(f"{url}/_mock/state").json()
    assert state["seed"] == 7 and state["partners"]["dev-partner"]["spvRequests"]["count"] == 0  # reset last
    assert {p["clientId"] for p in httpx.get(f"{url}/_mock/partners").json()["items"]} >= {"dev-partner", "beta"}


def _control_plane_subjects(url: str) -> dict[str, str]:
    """Two pending SPV requests, a funded subscription and a stored event, as the block's variables."""
    http = httpx.Client(base_url=url, timeout=30)
    token = http.post("/_mock/tokens", json={"clientId": "dev-partner"}).json()["accessToken"]
    auth = {"Authorization": f"Bearer {token}"}
    body = {"templateId": "syndicate_secondary", "templateVersion": "1.0.0", "attributes": {
        "underlyingCompanySlug": "co_acme", "currency": "USD",
        "shareClasses": [{"name": "Class A", "managementFeePercent": "2.0", "carryPercent": "20.0"}]}}

    def create() -> str:
        response = http.post("/v1/spv-requests", json=body, headers={**auth, "Idempotency-Key": str(uuid.uuid4())})
        return str(response.json()["spvRequestSlug"])

    funded = http.post(f"/_mock/admin/spv-requests/{create()}/approve").json()
    vehicle = funded["materialisedRefs"]["vehicleSlug"]
    row = {"partnerInvestorId": f"readme-{uuid.uuid4()}", "email": "alice@example.com", "firstName": "Alice",
           "lastName": "Liddell", "dateOfBirth": "1985-04-12"}
    person = http.post("/v1/investors", json={"investors": [row]}, headers=auth).json()["results"][0]["zestPersonId"]
    subscription = http.post(f"/v1/spvs/{vehicle}/subscriptions", headers=auth, json={"subscriptions": [{
        "zestPersonId": person, "lumpSum": {"currency": "USD", "value": "100.00"},
        "shareClassSlug": funded["feesAndCarry"]["shareClasses"][0]["slug"]}]}).json()["results"][0]
    pdf = (ROOT / "fixtures" / "signed-form.pdf").read_bytes()
    base = f"/v1/spvs/{vehicle}/subscription/{person}"
    assert http.post(f"{base}/forms", headers=auth, files={"file": ("f.pdf", pdf, "application/pdf")}).is_success
    assert http.post(f"{base}/fundings", headers=auth, files={"file": ("r.pdf", pdf, "application/pdf")},
                     data={"amount": "100.00", "currency": "USD", "wireReference": "W-1"}).is_success
    event = http.get("/_mock/webhooks/events").json()["items"][0]["eventId"]
    subjects = {"SLUG": create(), "OTHER_SLUG": create(), "SUB": subscription["subscriptionSlug"], "EVENT": event}
    http.close()
    return subjects


# ---- commands -------------------------------------------------------------------------------------------------------

INVOCATION = re.compile(r"(?:^|[`/]|run: )zest-mock ([a-z][a-z-]*(?: [a-z][a-z-]*)?)", re.M)
COMMANDS = sorted({" ".join(m.split()[:2]) for m in INVOCATION.findall(README)})


def _command_words(words: list[str]) -> list[str]:
    """The words that name a command: a group's word must name one of its subcommands; after a plain command the
    rest are its arguments (``zest-mock token dev-partner``)."""
    command: click.Command = main
    named: list[str] = []
    for word in words:
        if not isinstance(command, click.Group):
            break
        sub = command.get_command(click.Context(command), word)  # the root imports its commands on lookup
        assert sub is not None, f"`zest-mock {' '.join(words)}`: {word!r} is not a command of {named or 'zest-mock'}"
        command, named = sub, [*named, word]
    return named


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_in_the_readme_exists(command: str) -> None:
    result = CliRunner().invoke(main, [*_command_words(command.split()), "--help"])
    assert result.exit_code == 0, result.output


def test_a_bogus_subcommand_would_be_caught() -> None:
    with pytest.raises(AssertionError, match="is not a command of"):
        test_every_command_in_the_readme_exists("webhooks bogus")


def test_the_readme_shows_the_commands_that_matter() -> None:
    assert {"serve", "token", "scenario run", "verify-receiver", "conformance", "clock advance", "dev-credentials",
            "webhooks endpoint"} <= set(COMMANDS) | {c.split()[0] for c in COMMANDS}


def test_the_readme_links_nothing_outside_the_repository() -> None:
    assert "shared/" not in README
    for linked in re.findall(r"`((?:examples|scenarios|fixtures|mock_server|scripts|bench)/[^`\s]+)`", README):
        assert (ROOT / linked.rstrip("/")).exists(), linked
