"""The pytest plugin partners use (entry point ``pytest11``): fixtures that serve, reset and drive a zest-mock.

It owns the command-line and ini options (``--zest-mock-seed``, ``--zest-base-url``, ``--zest-audience``,
``--zest-html-dir``), the ``zest_scenario`` marker and five fixtures:

- ``zest_mock_session`` (session): one mock served by uvicorn in a thread on a free loopback port, manual clock
  (or the already running mock given by ``--zest-base-url``), plus the dev partner's key written to a file;
- ``zest_mock`` (function): resets that mock before the test (nothing kept, ids reseeded, clock manual, the
  marked scenario loaded) and returns a ``ZestMock``: URLs, credentials, control client, ``token()``, ``now()``;
- ``zest_control``: the ``ControlClient`` of the mock (clock, admin, faults, scenarios, journal, deliveries);
- ``zest_webhook_receiver``: a loopback receiver that verifies ``Zest-Signature`` as the Zest docs describe,
  records verified events and refused deliveries, and is registered as the dev partner's webhook endpoint;
- ``zest_clock``: the mock's clock and this process's clock in lock-step (freezegun): ``advance("2h")`` moves
  both, so ``time.time()`` and ``datetime.now()`` in the partner's code read the mock's simulated now.

With ``--zest-html-dir DIR``, a failed test that used the mock leaves ``DIR/<test id>.html``: the scenario report's
sequence diagram of what the test did to the mock (``report_html``), with the failure as its one verdict.

Nothing heavy is imported at pytest start-up: the app, httpx, the HTTP server and freezegun are imported inside
fixtures.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from http.server import ThreadingHTTPServer

    from mock_server.harness.control_client import ControlClient

CLIENT_ID = "dev-partner"
DEFAULT_SEED = 1
SIGNATURE_TOLERANCE_SECONDS = 300
WEBHOOK_PATH = "/zest/webhooks"
_MARKER = "zest_scenario(name): load the named scenario of the zest-mock library into the mock before the test"
_STARTED_AT = pytest.StashKey[str]()  # simulated instant a test's zest_mock was reset at


# ---- options and marker -----------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("zest-mock", "Zest Partner API mock (zest-mock)")
    group.addoption("--zest-mock-seed", type=int, default=None, metavar="N",
                    help=f"seed of the mock's ids, re-applied before every test (default {DEFAULT_SEED})")
    group.addoption("--zest-base-url", default=None, metavar="URL",
                    help="use the zest-mock already running at URL instead of serving one")
    group.addoption("--zest-audience", default=None, metavar="AUD",
                    help="JWT aud the mock given by --zest-base-url expects: a URL or a preset (sandbox, production); "
                         "default that URL")
    group.addoption("--zest-html-dir", default=None, metavar="DIR",
                    help="write an HTML report (sequence diagram of the mock's journal and deliveries) for each "
                         "failed test that used the mock")
    parser.addini("zest_mock_seed", f"default of --zest-mock-seed (default {DEFAULT_SEED})", default="")
    parser.addini("zest_base_url", "default of --zest-base-url", default="")
    parser.addini("zest_audience", "default of --zest-audience", default="")
    parser.addini("zest_html_dir", "default of --zest-html-dir", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER)


def _option(config: pytest.Config, name: str) -> str | None:
    """The command-line value, else the ini value, else None."""
    value = config.getoption(f"--{name.replace('_', '-')}")
    if value is None:
        value = config.getini(name) or None
    return None if value is None else str(value)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    directory = _option(item.config, "zest_html_dir")
    mock = getattr(item, "funcargs", {}).get("zest_mock")
    if directory and report.when == "call" and report.failed and isinstance(mock, ZestMock):
        report.sections.append(("zest-mock report", _write_failure_report(Path(directory), item, report, mock)))
    return report


def _write_failure_report(directory: Path, item: pytest.Item, report: pytest.TestReport, mock: ZestMock) -> str:
    """The HTML report of what the failed test did to the mock; returns where it went (or why it could not)."""
    import re

    from mock_server.harness.control_client import ControlError
    from mock_server.harness.expectations import fetch_evidence
    from mock_server.harness.junit import CaseResult
    from mock_server.harness.report_html import write_html

    text = report.longreprtext
    case = CaseResult(item.nodeid, "pytest", False, (text.strip().splitlines() or ["failed"])[-1], evidence=text)
    path = directory / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', item.nodeid)[:180]}.html"
    try:
        evidence = fetch_evidence(mock.control, mock.client_id, started_at=item.stash.get(_STARTED_AT, None))
        write_html(path, f"pytest {item.nodeid}", [case], evidence, seed=mock.seed)
    except (ControlError, OSError) as exc:
        return f"no HTML report: {exc}"
    return f"HTML report: {path}"


# ---- what a test gets -------------------------------------------------------------------------------------------


@dataclass
class ZestMock:
    """One mock as a test sees it, freshly reset: where it is, the dev partner's credentials, and its control."""

    base_url: str
    client_id: str
    private_key_path: Path = field(repr=False)
    private_key_pem: str = field(repr=False)
    webhook_secret: str = field(repr=False)
    audience: str = field(repr=False)
    seed: int = 1
    control: ControlClient = field(repr=False, kw_only=True)

    @property
    def mock_url(self) -> str:
        """Where the control plane is: the same server as the API."""
        return self.base_url

    def token(self) -> str:
        """An access token by the real JWT-bearer exchange, the assertion signed at simulated now."""
        from mock_server.harness.assertions import fetch_token

        return fetch_token(self.base_url, self.client_id, self.private_key_pem, self.audience, now=self.time())

    def now(self) -> datetime:
        """Simulated now (aware, UTC)."""
        from mock_server.clock import parse_instant

        return parse_instant(str(self.control.clock()["now"]))

    def time(self) -> float:
        """Simulated now in Unix seconds: a drop-in for ``time.time`` when your code's clock is injectable."""
        return self.now().timestamp()

    def advance(self, seconds: float) -> dict[str, Any]:
        """Move simulated time forward, running every job due on the way (deliveries included)."""
        return self.control.advance(seconds=seconds)

    def point_webhooks_at(self, url: str | None, secret: str | None = None) -> None:
        """Deliver the dev partner's webhooks to ``url`` (your app's endpoint), optionally with a new secret."""
        answer = self.control.set_webhook_endpoint(url, client_id=self.client_id, secret=secret)
        self.webhook_secret = str(answer.get("secret") or self.webhook_secret)


@dataclass(frozen=True)
class ZestMockSession:
    """What the whole pytest session shares: one mock (served here or already running) and the dev key file."""

    base_url: str
    audience: str
    seed: int
    served: bool
    control: ControlClient
    private_key_pem: str
    private_key_path: Path


# ---- fixtures ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def zest_mock_session(request: pytest.FixtureRequest,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZestMockSession]:
    """One mock for the session: the one at ``--zest-base-url``, or one served on a free loopback port."""
    from mock_server.dev_partner import dev_partner_private_key
    from mock_server.harness.control_client import ControlClient
    from mock_server.presets import resolve_audience

    config = request.config
    seed = int(_option(config, "zest_mock_seed") or DEFAULT_SEED)
    external = _option(config, "zest_base_url")
    key_pem = dev_partner_private_key()
    key_path = tmp_path_factory.mktemp("zest-mock") / "dev-partner-ed25519-private.pem"
    key_path.write_text(key_pem)
    key_path.chmod(0o600)
    with _mock_server(external, seed) as base_url, ControlClient(base_url) as control:
        audience = resolve_audience(_option(config, "zest_audience") or base_url) if external else base_url
        yield ZestMockSession(base_url.rstrip("/"), audience.rstrip("/"), seed, external is None, control, key_pem,
                              key_path)


@pytest.fixture
def zest_mock(zest_mock_session: ZestMockSession, request: pytest.FixtureRequest) -> ZestMock:
    """The session's mock, reset for this test: no resources, events or faults, ids reseeded, clock manual."""
    session = zest_mock_session
    control = session.control
    _reset(session, _scenario_name(request))
    request.node.stash[_STARTED_AT] = str(control.clock()["now"])
    partner = next((p for p in control.partners().get("items", []) if p.get("clientId") == CLIENT_ID), None)
    if partner is None:
        pytest.fail(f"the mock at {session.base_url} has no {CLIENT_ID} partner after a reset", pytrace=False)
    return ZestMock(base_url=session.base_url, client_id=CLIENT_ID, private_key_path=session.private_key_path,
                    private_key_pem=session.private_key_pem, webhook_secret=str(partner["webhookSecret"]),
                    audience=session.audience, seed=session.seed, control=control)


@pytest.fixture
def zest_control(zest_mock: ZestMock) -> ControlClient:
    """The typed client of the mock's ``/_mock`` control plane."""
    return zest_mock.control


@pytest.fixture
def zest_webhook_receiver(zest_mock: ZestMock) -> Iterator[ZestWebhookReceiver]:
    """A signature-verifying receiver on loopback, registered as the dev partner's webhook endpoint."""
    receiver = ZestWebhookReceiver(zest_mock.webhook_secret, diagnose=_diagnosis(zest_mock))
    receiver.start()
    try:
        zest_mock.point_webhooks_at(receiver.url)
        yield receiver
    finally:
        receiver.close()


@dataclass
class ZestClock:
    """The mock's simulated clock and this process's clock as one: frozen together, advanced together.

    The process clock is frozen (freezegun, ``tick=False``) at the mock's simulated now and moves only with
    ``advance``: the plugin's mock runs a manual clock, so a ticking process clock would drift away from it.
    ``real_asyncio=True`` leaves event loops on real time, so servers and timeouts keep working.
    """

    mock: ZestMock = field(repr=False)
    _frozen: Any = field(repr=False)

    def now(self) -> datetime:
        """Simulated now (aware, UTC); ``datetime.now(UTC)`` in the test process reads the same."""
        return self.mock.now()

    def advance(self, duration: float | str) -> dict[str, Any]:
        """Move both clocks by ``duration`` (seconds, or ``"30s"``, ``"2h"``, ``"1h30m"``, ``"2d"``), running every
        job of the mock due on the way; returns the mock's account of what ran."""
        from mock_server.clock import parse_instant
        from mock_server.durations import parse_duration

        result = self.mock.advance(parse_duration(duration))
        self._frozen.move_to(parse_instant(str(result["to"])))
        return result


@pytest.fixture
def zest_clock(zest_mock: ZestMock) -> Iterator[ZestClock]:
    """The process clock frozen at the mock's simulated now, advanced with it (needs freezegun)."""
    try:
        import freezegun
    except ImportError:
        pytest.fail("zest_clock needs freezegun: pip install freezegun", pytrace=False)
    with freezegun.freeze_time(zest_mock.now(), tick=False, real_asyncio=True) as frozen:
        yield ZestClock(zest_mock, frozen)


# ---- serving and resetting --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _mock_server(external: str | None, seed: int) -> Iterator[str]:
    """The base URL of the mock: ``external`` as given, or a manual-clock mock served in a thread, stopped on exit."""
    if external:
        yield external
        return
    from mock_server.serving import in_thread

    # Assertions signed with the partner's wall clock stay valid however far tests advance simulated time:
    # the mock judges assertion times against either clock.
    with in_thread(seed=seed, clock_mode="manual") as (url, _):
        yield url


def _reset(session: ZestMockSession, scenario: str | None) -> None:
    """Everything back to a fresh start except simulated time, which only moves forward."""
    control = session.control
    _or_fail(session, "resetting the mock", lambda: control.reset(keep_partners=False))
    control.set_clock("manual")
    control.seed(session.seed)
    if scenario is not None:
        _or_fail(session, f"zest_scenario({scenario!r})", lambda: control.load_scenario(scenario))


def _or_fail(session: ZestMockSession, what: str, call: Callable[[], object]) -> None:
    """Run a control call; a refusal or an unreachable mock fails the test with one clear line."""
    from mock_server.harness.control_client import ControlError, MockUnreachable

    try:
        call()
        return
    except ControlError as exc:
        problem = exc
    hint = " (is it running? it was given by --zest-base-url)" if isinstance(problem, MockUnreachable) \
        and not session.served else ""
    pytest.fail(f"zest-mock: {what} failed: {problem}{hint}", pytrace=False)


def _scenario_name(request: pytest.FixtureRequest) -> str | None:
    marker = request.node.get_closest_marker("zest_scenario")
    if marker is None:
        return None
    if len(marker.args) != 1 or not isinstance(marker.args[0], str):
        pytest.fail('zest_scenario takes one scenario name: @pytest.mark.zest_scenario("happy_path")',
                    pytrace=False)
    return str(marker.args[0])


# ---- the webhook receiver ---------------------------------------------------------------------------------------


def verify_signature(header: str, raw_body: bytes, secret: str, *, now: float | None = None,
                     tolerance: int = SIGNATURE_TOLERANCE_SECONDS) -> str | None:
    """Check ``Zest-Signature`` the way the Zest docs describe; returns why it is refused, or None when valid.

    Split on ``,``, each item on its first ``=``; HMAC-SHA256 keyed with the whole secret over ``t + "." + raw
    body``; constant-time comparison with every ``v1``; ``t`` within ``tolerance`` seconds of now.
    """
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key.strip(), []).append(value.strip())
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        return "no usable t= in Zest-Signature"
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return f"t={timestamp} is outside the {tolerance} s window"
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", [])):
        return "no v1 signature matches"
    return None


@dataclass(frozen=True)
class RejectedDelivery:
    """A delivery the receiver refused with a 400: its headers, raw body and the reason."""

    headers: dict[str, str]
    body: bytes
    reason: str


@dataclass
class ZestWebhookReceiver:
    """A loopback webhook endpoint that verifies signatures and records what arrives, for tests to wait on."""

    secret: str
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS
    diagnose: Callable[[str], str] | None = None
    url: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[RejectedDelivery] = field(default_factory=list)
    _arrived: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"ZestWebhookReceiver(url={self.url!r}, events={len(self.events)}, rejected={len(self.rejected)})"

    def event_types(self) -> list[str]:
        """Types of the verified events, in arrival order (duplicates included: delivery is at-least-once)."""
        with self._arrived:
            return [str(e.get("eventType")) for e in self.events]

    def wait_for(self, event_type: str, timeout: float = 5.0) -> dict[str, Any]:
        """The first verified event of ``event_type``, waiting up to ``timeout`` seconds of wall time for it."""
        __tracebackhide__ = True  # a failure points at the test's line, not here
        with self._arrived:
            if self._arrived.wait_for(lambda: self._first(event_type) is not None, timeout):
                found = self._first(event_type)
                assert found is not None
                return found
        raise AssertionError(self._timeout_message(event_type, timeout))

    def accept(self, header: str, body: bytes, headers: dict[str, str]) -> int:
        """Judge one delivery; returns the status to answer (200 verified, 400 refused)."""
        reason = verify_signature(header, body, self.secret, tolerance=self.tolerance)
        event = _json_event(body) if reason is None else None
        if reason is None and event is None:
            reason = "body is not a JSON event"
        with self._arrived:
            if event is None:
                self.rejected.append(RejectedDelivery(headers, body, reason or "refused"))
            else:
                self.events.append(event)
            self._arrived.notify_all()
        return 200 if event is not None else 400

    def start(self) -> None:
        from http.server import ThreadingHTTPServer

        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="zest-webhook-receiver",
                         daemon=True).start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}{WEBHOOK_PATH}"
        self._server = server

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _first(self, event_type: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e.get("eventType") == event_type), None)

    def _timeout_message(self, event_type: str, timeout: float) -> str:
        lines = [f"no verified {event_type} webhook arrived at {self.url} within {timeout:g} s",
                 f"verified so far: {self.event_types() or 'none'}",
                 f"refused (bad signature or body): {len(self.rejected)}"
                 + (f", last because {self.rejected[-1].reason}" if self.rejected else "")]
        if self.diagnose is not None:
            lines.append(self.diagnose(event_type))
        return "\n".join(lines)


def _json_event(body: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(body)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "eventType" in event else None


def _handler_class(receiver: ZestWebhookReceiver) -> type:
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {key.lower(): value for key, value in self.headers.items()}
            status = receiver.accept(self.headers.get("Zest-Signature", ""), body, headers)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _diagnosis(mock: ZestMock) -> Callable[[str], str]:
    """What the mock knows about events of a type: stored or not, and how each delivery attempt went."""

    def diagnose(event_type: str) -> str:
        from mock_server.harness.control_client import ControlError

        try:
            stored = mock.control.events(client_id=mock.client_id, event_type=event_type).get("items", [])
            if not stored:
                return f"the mock stored no {event_type} event for {mock.client_id}: nothing triggered one yet"
            attempts = mock.control.deliveries(client_id=mock.client_id).get("items", [])
        except ControlError as exc:
            return f"(could not ask the mock: {exc})"
        ids = {e.get("eventId") for e in stored}
        tried = [f"{a.get('outcome')} {a.get('statusCode') or a.get('error') or ''}".strip()
                 for a in attempts if a.get("eventId") in ids]
        return (f"the mock stored {len(stored)} {event_type} event(s); delivery attempts: {tried or 'none yet'} "
                "(deliveries due later run when the clock is advanced)")

    return diagnose
