"""Crash recovery: ``kill -9`` a ``zest-mock serve --state FILE`` process mid-work, restart it on the same file.

At the moment of the kill every delivery is mid-chain (three failed attempts on record, the fourth posted to a
receiver that hangs), and a 9 MB form upload is 4 MB in (the server holds it in a spool file). After the
restart, with the receiver healed and the clock driven through the rest of the retry schedule:

- every stored event is delivered (at least once), exactly on its chain's next attempt;
- every resource, event body and idempotency record is as it was: a replay of each create with the same key and
  body answers the very bytes of the first answer, and makes nothing new;
- the interrupted upload left nothing behind: no file, no status change, no event;
- stored files are still served behind their signed URLs;
- simulated time does not run backwards across the crash.

The server is a real subprocess (the ``zest-mock`` entry point), driven only over HTTP, on loopback.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from receiver import Receiver
from support import SAMPLE_ATTRIBUTES, subscription

from mock_server.clock import parse_instant

SECRET = "whsec_" + "c0ffee" * 6
SPV_BODY = {"templateId": "syndicate_secondary", "templateVersion": "1.0.0", "attributes": SAMPLE_ATTRIBUTES}
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PDF = (FIXTURES / "signed-form.pdf").read_bytes()
BOUNDARY = "crashboundary"
UPLOAD_BYTES = 9 * 1024 * 1024  # under the 10 MiB cap, so only the crash can stop it
HALF = 4 * 1024 * 1024  # what the client streams before the kill
REST_OF_SCHEDULE = 15 * 3600  # past the last attempt (+12 h after +2 h 35 min 30 s)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Poll ``condition`` until it holds, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)  # polling a condition with a deadline


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def command() -> list[str]:
    entry = Path(sys.executable).with_name("zest-mock")
    return [str(entry)] if entry.exists() else [sys.executable, "-m", "mock_server"]


@dataclass
class Mock:
    """One ``zest-mock serve`` subprocess on a state file; its temp files go to ``spool`` so they can be seen."""

    state: Path
    receiver_url: str
    spool: Path
    logs: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    boots: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Mock:
        self.port = free_port()
        args = [*command(), "serve", "--state", str(self.state), "--clock", "manual", "--seed", "1",
                "--host", "127.0.0.1", "--port", str(self.port), "--webhook-url", self.receiver_url,
                "--webhook-secret", SECRET]
        env = {k: v for k, v in os.environ.items() if not k.startswith("ZEST_MOCK_")}  # only the flags count
        env["TMPDIR"] = str(self.spool)
        log = (self.logs / f"boot-{len(self.boots)}.log").open("wb")
        self.proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.boots.append(self.proc.pid)
        wait_for(self._healthy, f"zest-mock to serve on {self.url}", timeout=30)
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log_text()
        try:
            return httpx.get(f"{self.url}/public/hc", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(timeout=10) == -signal.SIGKILL

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def spooling(self) -> bool:
        """Whether the server holds a temp file in ``spool`` open: an upload of over 1 MiB is being received."""
        assert self.proc is not None
        fds = Path(f"/proc/{self.proc.pid}/fd")
        links = []
        for fd in fds.iterdir():
            with contextlib.suppress(OSError):
                links.append(os.readlink(fd))
        return any(link.startswith(str(self.spool)) for link in links)

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("boot-*.log")))


@pytest.fixture
def mock(tmp_path: Path, receiver: Receiver) -> Iterator[Mock]:
    spool, logs = tmp_path / "spool", tmp_path / "logs"
    spool.mkdir()
    logs.mkdir()
    widen_backlog(receiver)
    server = Mock(tmp_path / "zest.db", receiver.url, spool, logs)
    try:
        yield server
    finally:
        server.stop()


def widen_backlog(receiver: Receiver) -> None:
    """Let the receiver queue every simultaneous delivery: ``socketserver``'s listen backlog of 5 drops the SYNs of
    the rest, and their retransmissions (1 s, 3 s, 7 s later) can push them past the mock's attempt deadline."""
    assert receiver._server is not None
    receiver._server.socket.listen(128)


def http(mock: Mock, headers: dict[str, str] | None = None) -> httpx.Client:
    return httpx.Client(base_url=mock.url, headers=headers or {}, timeout=30)


def token(client: httpx.Client) -> dict[str, str]:
    response = client.post("/_mock/tokens", json={})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['accessToken']}"}


def advance(client: httpx.Client, seconds: float) -> dict[str, Any]:
    response = client.post("/_mock/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.text
    return dict(response.json())


def items(client: httpx.Client, path: str, **params: str) -> list[dict[str, Any]]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


@dataclass
class SlowUpload:
    """A form upload streamed from a thread over a raw socket: ``HALF`` of its body, then it waits to be cut."""

    url: str
    target: str
    headers: dict[str, str]
    sent: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    thread: threading.Thread | None = None

    def start(self) -> SlowUpload:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
                "Content-Type: application/pdf\r\n\r\n").encode() + PDF
        tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        length = len(head) + UPLOAD_BYTES - len(PDF) + len(tail)
        parts = urlsplit(self.url)
        try:
            with socket.create_connection((parts.hostname, parts.port), timeout=20) as conn:
                conn.sendall((f"POST {self.target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                              f"Authorization: {self.headers['Authorization']}\r\n"
                              f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                              f"Content-Length: {length}\r\n\r\n").encode() + head)
                chunk = b"\0" * 65536
                for _ in range(HALF // len(chunk)):
                    conn.sendall(chunk)
                self.sent.set()
                self.release.wait(timeout=30)  # the rest never comes: the server is killed first
        except OSError as exc:
            self.error = exc
            self.sent.set()

    def join(self) -> None:
        self.release.set()
        assert self.thread is not None
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


def in_background(call: Callable[[], Any]) -> threading.Thread:
    def swallow() -> None:
        with contextlib.suppress(httpx.TransportError):
            call()  # the server dies under it

    thread = threading.Thread(target=swallow, daemon=True)
    thread.start()
    return thread


def resources(control: httpx.Client) -> dict[str, Any]:
    """The dev partner's resources and event tally as the control plane shows them (delivery states move on)."""
    mine = dict(control.get("/_mock/state").json()["partners"]["dev-partner"])
    mine.pop("deliveries")
    return mine


def state_file_rows(state: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows read straight from the state file (read-only), once the server is gone."""
    with contextlib.closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True)) as conn:
        return list(conn.execute(sql, args).fetchall())


def test_kill_9_mid_chain_and_mid_upload_loses_nothing(mock: Mock, receiver: Receiver) -> None:
    receiver.status = 500
    mock.start()
    with http(mock) as control:
        headers = token(control)
        with http(mock, headers) as api:
            first = {f"key-{i}": api.post("/v1/spv-requests", json=SPV_BODY, headers={"Idempotency-Key": f"key-{i}"})
                     for i in range(5)}
            assert {r.status_code for r in first.values()} == {201}
            vehicle, person, pending_sub = subscription(api, headers)  # type: ignore[arg-type]
            done_vehicle, _, _ = subscription(api, headers)  # type: ignore[arg-type]
            stored = api.post(f"/v1/spvs/{done_vehicle}/subscription/{person}/forms",
                              files={"file": ("form.pdf", PDF, "application/pdf")})
            assert stored.status_code == 201, stored.text
        advance(control, 0)
        advance(control, 330)  # attempts 1-3 of every delivery failed; the 4th is due at +30 min
        events_before = items(control, "/_mock/webhooks/events")
        resources_before = resources(control)
        attempts_before = items(control, "/_mock/webhooks/deliveries")
    assert len(attempts_before) == 3 * len(events_before) and len(receiver.deliveries) == len(attempts_before)
    assert {a["outcome"] for a in attempts_before} == {"failed"}

    receiver.hang_seconds = 5.0  # the 4th attempts get stuck in the receiver, inside the mock's 10 s deadline
    advancing = in_background(lambda: httpx.post(f"{mock.url}/_mock/clock/advance", json={"seconds": 1800},
                                                 timeout=30))
    wait_for(lambda: len(receiver.deliveries) == 4 * len(events_before), "the 4th attempts to be in flight")
    upload = SlowUpload(mock.url, f"/v1/spvs/{vehicle}/subscription/{person}/forms", headers).start()
    assert upload.sent.wait(timeout=20) and upload.error is None, upload.error
    if Path("/proc/self/fd").is_dir():
        wait_for(mock.spooling, "the server to spool the half-received upload")
    mock.kill()
    upload.join()
    advancing.join(timeout=30)
    assert not advancing.is_alive()
    assert list(mock.spool.iterdir()) == []  # the spool file died with the process

    receiver.status, receiver.hang_seconds = 200, 0.0
    mark = len(receiver.deliveries)
    mock.start()
    with http(mock) as control, http(mock, headers) as api:
        assert parse_instant(control.get("/_mock/clock").json()["now"]) >= parse_instant(
            max(a["at"] for a in attempts_before))
        assert items(control, "/_mock/webhooks/events") == events_before  # same ids, same bodies, same order
        assert resources(control) == resources_before
        pending = next(s for s in resources_before["subscriptions"]["items"] if s["subscriptionSlug"] == pending_sub)
        assert pending["status"] == "pending"  # the interrupted upload moved nothing
        again = api.post(f"/v1/spvs/{done_vehicle}/subscription/{person}/forms",
                         files={"file": ("form.pdf", PDF, "application/pdf")})
        assert again.status_code == 201 and again.json()["uploadedAt"] == stored.json()["uploadedAt"]  # no-op
        served = api.get(urlsplit(again.json()["subscriptionFormUrl"])._replace(scheme="", netloc="").geturl())
        assert served.status_code == 200 and served.content == PDF  # the stored file survived, byte for byte

        for key, answer in first.items():
            replay = api.post("/v1/spv-requests", json=SPV_BODY, headers={"Idempotency-Key": key})
            assert (replay.status_code, replay.content) == (201, answer.content)
        fresh = api.post("/v1/spv-requests", json=SPV_BODY, headers={"Idempotency-Key": "after-restart"})
        assert fresh.status_code == 201
        slugs_before = {r.json()["spvRequestSlug"] for r in first.values()}
        assert fresh.json()["spvRequestSlug"] not in slugs_before  # a restart draws fresh ids

        advance(control, REST_OF_SCHEDULE)
        events_after = items(control, "/_mock/webhooks/events")
        attempts = items(control, "/_mock/webhooks/deliveries")
        assert items(control, "/_mock/webhooks/dead-letter") == []
    assert events_after[:-1] == events_before and events_after[-1]["eventType"] == "spv_request.created"
    for event in events_after:
        chain = [(a["attempt"], a["outcome"]) for a in attempts if a["eventId"] == event["eventId"]]
        if event in events_before:  # three failures before the crash, the in-flight 4th re-run after it
            assert chain == [(1, "failed"), (2, "failed"), (3, "failed"), (4, "delivered")], chain
        else:
            assert chain == [(1, "delivered")], chain
    delivered = {b["eventId"] for b in receiver.bodies()[mark:]}
    assert delivered == {e["eventId"] for e in events_after}
    mock.stop()
    assert state_file_rows(mock.state, "SELECT COUNT(*) FROM files") == [(1,)]
    assert state_file_rows(mock.state, "SELECT status, form_sha256 FROM subscriptions WHERE slug = ?",
                           pending_sub) == [("pending", None)]
    assert state_file_rows(mock.state, "SELECT COUNT(*) FROM idempotency WHERE state != 'done'") == [(0,)]


def test_simulated_time_does_not_run_backwards_across_a_crash(mock: Mock, receiver: Receiver) -> None:
    """A crash in the middle of ``advance`` must not rewind the clock below what the store already recorded."""
    receiver.status = 500
    mock.start()
    with http(mock) as control:
        refused = f"http://127.0.0.1:{free_port()}/hooks"  # nothing listens: each attempt fails at once
        registered = control.post("/_mock/partners", json={"clientId": "partner-b", "tenantSlug": "beta",
                                                           "webhookUrl": refused})
        assert registered.status_code == 201, registered.text
        b_token = control.post("/_mock/tokens", json={"clientId": "partner-b"}).json()["accessToken"]
        for headers in (token(control), {"Authorization": f"Bearer {b_token}"}):
            response = control.post("/v1/spv-requests", json=SPV_BODY, headers={**headers, "Idempotency-Key": "k"})
            assert response.status_code == 201, response.text
        advance(control, 0)  # both first attempts failed; both second attempts are due at +30 s
        receiver.hang_seconds = 5.0
        advancing = in_background(lambda: httpx.post(f"{mock.url}/_mock/clock/advance", json={"seconds": 60},
                                                     timeout=30))
        wait_for(lambda: len(items(control, "/_mock/webhooks/deliveries", clientId="partner-b")) == 2,
                 "partner B's second attempt to be recorded while A's hangs")
        recorded = max(a["at"] for a in items(control, "/_mock/webhooks/deliveries"))
        mock.kill()
        advancing.join(timeout=30)
    receiver.status, receiver.hang_seconds = 200, 0.0
    mock.start()
    with http(mock) as control:
        now = control.get("/_mock/clock").json()["now"]
        assert parse_instant(now) >= parse_instant(recorded), f"clock resumed at {now}, before {recorded}"
        advance(control, 3600)
        chain = [(a["clientId"], a["attempt"], a["outcome"]) for a in items(control, "/_mock/webhooks/deliveries")]
    assert ("dev-partner", 2, "delivered") in chain and ("partner-b", 2, "failed") in chain


CHAIN_OFFSETS = [0, 30, 330, 2130, 9330, 52530]  # +0, +30 s, +5 min, +30 min, +2 h, +12 h


def test_kill_9_around_every_attempt_of_a_chain_never_repeats_or_loses_one(mock: Mock, receiver: Receiver) -> None:
    """The receiver answers 500 to every attempt and, on every other answer, kills the mock right after its answer
    went out: the kill lands between the answer and its commit, or just after the commit. Either way, once the
    chain has run out, the attempts on record are 1..6, each once, on the production schedule."""
    receiver.status = 500
    answers: list[int] = []

    def kill_every_other_answer() -> None:
        answers.append(1)
        if len(answers) % 2 and mock.proc is not None:
            mock.proc.send_signal(signal.SIGKILL)

    receiver.after_answer = kill_every_other_answer
    mock.start()
    with http(mock) as control:
        assert control.post("/v1/spv-requests", json=SPV_BODY,
                            headers={**token(control), "Idempotency-Key": "chain-1"}).status_code == 201
    for _ in range(40):  # bounded: six attempts, each killed at most once
        assert mock.proc is not None
        if mock.proc.poll() is not None:  # killed by the receiver: restart on the same state file
            mock.start()
        with http(mock) as control:
            try:
                recorded = items(control, "/_mock/webhooks/deliveries")
                if recorded and recorded[-1]["nextAttemptAt"] is None:
                    break
                target = {"to": recorded[-1]["nextAttemptAt"]} if recorded else {"seconds": 0}
                control.post("/_mock/clock/advance", json=target)
            except httpx.TransportError:
                mock.proc.wait(timeout=10)  # the receiver killed it mid-call
    with http(mock) as control:
        recorded = items(control, "/_mock/webhooks/deliveries")
        dead = items(control, "/_mock/webhooks/dead-letter")
    assert [a["attempt"] for a in recorded] == [1, 2, 3, 4, 5, 6], recorded
    start = parse_instant(recorded[0]["at"])
    assert [(parse_instant(a["at"]) - start).total_seconds() for a in recorded] == CHAIN_OFFSETS
    assert len(dead) == 1 and dead[0]["attempts"] == 6
    assert len(mock.boots) > 3, "the receiver's kills did not land"
