"""Processes of the bench: the mock (``zest-mock serve``, one per measurement group), the webhook receiver, wrk.

Also what the bench reads from them: RSS from ``/proc/<pid>/status``, the partner API through httpx, and a raw
socket client that streams an upload body from a generator and stops sending as soon as the server answers.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
LUA_SCRIPT = BENCH_DIR / "lua" / "load.lua"
RECEIVER = BENCH_DIR / "receiver.py"
START_DEADLINE_S = 15.0
STOP_DEADLINE_S = 15.0
CLEAN_EXITS = (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after its graceful shutdown: -15 is a clean stop
SPV_BODY = {"templateId": "syndicate_secondary", "templateVersion": "1.0.0", "attributes": {
    "underlyingCompanySlug": "co_acme", "currency": "USD",
    "shareClasses": [{"name": "Class A", "managementFeePercent": "2.0", "carryPercent": "20.0"}]}}


class BenchError(RuntimeError):
    """The bench itself broke (not a missed target): the run has no trustworthy figures."""


INSTALLED: list[Path] = []  # the zest-mock of the bench's wheel install, once ``run.install_wheel`` made it


def zest_mock_command() -> str:
    """The ``zest-mock`` the bench installed from the wheel, else the one next to the running interpreter (the
    venv's), else the one on PATH."""
    if INSTALLED:
        return str(INSTALLED[0])
    beside = Path(sys.executable).parent / "zest-mock"
    if beside.exists():
        return str(beside)
    found = shutil.which("zest-mock")
    if found is None:
        raise BenchError("zest-mock is not installed: run `make bench` (it installs the venv) or `pip install -e .`")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Memory:
    rss_kib: int
    hwm_kib: int


def memory(pid: int) -> Memory:
    """VmRSS and VmHWM (peak RSS) of a process, from ``/proc/<pid>/status``."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return Memory(values["VmRSS"], values["VmHWM"])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_cores(seconds: float = 1.0) -> float:
    """How many cores were busy over ``seconds`` (from ``/proc/stat``); sampled while the bench runs nothing, it
    is what other processes take from the measurement."""
    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    if total1 == total0:
        return 0.0
    return (1 - (idle1 - idle0) / (total1 - total0)) * (os.cpu_count() or 1)


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (``echo 5 > /proc/<pid>/clear_refs``); False when not permitted."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class Mock:
    """One ``zest-mock serve --clock manual --seed 1`` on a free loopback port, with fresh in-memory state."""

    def __init__(self, log_dir: Path, name: str, extra: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [zest_mock_command(), "serve", "--port", str(self.port), "--clock", "manual", "--seed", "1",
                        *extra]
        self.log_path = log_dir / f"mock-{name}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_in_s = 0.0
        self.startup_cpu_s = 0.0
        self.spawned_at = 0.0  # time.perf_counter() at spawn
        self.exit_code: int | None = None
        self.client = httpx.Client(base_url=self.url, timeout=httpx.Timeout(30.0, read=600.0))
        self._token: str | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> float:
        """Start the process and poll ``/public/hc``; returns seconds from spawn to the first 200."""
        with self.log_path.open("wb") as log:
            started = self.spawned_at = time.perf_counter()
            self.proc = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = started + START_DEADLINE_S
        while True:
            if _health_ok(self.port):
                self.started_in_s = time.perf_counter() - started
                self.startup_cpu_s = cpu_seconds(self.proc.pid)
                return self.started_in_s
            if self.proc.poll() is not None:
                raise BenchError(f"the mock exited with {self.proc.returncode} before answering /public/hc:\n"
                                 f"{self.log_tail()}")
            if time.perf_counter() > deadline:
                raise BenchError(f"the mock did not answer /public/hc within {START_DEADLINE_S:.0f} s:\n"
                                 f"{self.log_tail()}")
            time.sleep(0.002)

    def stop(self) -> int | None:
        """SIGTERM, then wait; SIGKILL only if it hangs. Returns the exit code (-15 is uvicorn's clean stop)."""
        self.client.close()
        if self.proc is None:
            return None
        self.exit_code = terminate(self.proc)
        return self.exit_code

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def memory(self) -> Memory:
        return memory(self.pid)

    # ---- the API ------------------------------------------------------------------------------------------------

    def call(self, method: str, path: str, expect: Iterable[int] = (200, 201), **kwargs: Any) -> Any:
        """One request; its JSON answer, or BenchError when the status is not one of ``expect``."""
        headers = dict(kwargs.pop("headers", {}))
        if path.startswith("/v1/"):
            headers.setdefault("Authorization", f"Bearer {self.token()}")
        try:
            response = self.client.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise BenchError(f"{method} {path} failed: {exc!r}\n{self.log_tail()}") from exc
        if response.status_code not in tuple(expect):
            raise BenchError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def token(self) -> str:
        """A bearer token of the dev partner, from the control plane (no JWT exchange)."""
        if self._token is None:
            response = self.client.post("/_mock/tokens", json={"clientId": "dev-partner"})
            if response.status_code != 201:
                raise BenchError(f"POST /_mock/tokens answered {response.status_code}: {response.text[:500]}")
            self._token = str(response.json()["accessToken"])
        return self._token

    def create_spv_request(self) -> str:
        body = self.call("POST", "/v1/spv-requests", json=SPV_BODY, headers={"Idempotency-Key": str(uuid.uuid4())})
        return str(body["spvRequestSlug"])

    def create_investors(self, prefix: str, count: int) -> int:
        """``count`` investors with fresh partnerInvestorIds in one bulk request; returns how many were created."""
        rows = [{"partnerInvestorId": f"{prefix}-{i}", "email": "ada@example.com", "firstName": "Ada",
                 "lastName": "Byron", "dateOfBirth": "1980-01-01"} for i in range(count)]
        results = self.call("POST", "/v1/investors", json={"investors": rows})["results"]
        return sum(1 for r in results if r["status"] == "created")

    def subscription(self) -> tuple[str, str]:
        """An approved SPV with one pending subscription of a fresh investor: (vehicle slug, zestPersonId)."""
        slug = self.create_spv_request()
        spv = self.call("POST", f"/_mock/admin/spv-requests/{slug}/approve", expect=(200,))
        vehicle = spv["materialisedRefs"]["vehicleSlug"]
        share_class = spv["feesAndCarry"]["shareClasses"][0]["slug"]
        row = {"partnerInvestorId": "bench-upload-1", "email": "ada@example.com", "firstName": "Ada",
               "lastName": "Byron", "dateOfBirth": "1980-01-01"}
        person = self.call("POST", "/v1/investors", json={"investors": [row]})["results"][0]["zestPersonId"]
        subscription = {"zestPersonId": person, "lumpSum": {"currency": "USD", "value": "50000.00"},
                        "shareClassSlug": share_class, "partnerSubscriptionId": "bench-sub-1"}
        self.call("POST", f"/v1/spvs/{vehicle}/subscriptions", expect=(201,), json={"subscriptions": [subscription]})
        return vehicle, str(person)

    def advance(self, seconds: float) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", "/_mock/clock/advance", expect=(200,), json={"seconds": seconds})
        return result

    def delivery_counts(self) -> dict[str, int]:
        """Deliveries of the dev partner by status, from ``GET /_mock/state``."""
        state = self.call("GET", "/_mock/state", expect=(200,))
        tally = state["partners"]["dev-partner"]["deliveries"]
        return dict(tally.get("byStatus") or {})


def _health_ok(port: int) -> bool:
    return answer_status(port, "/public/hc") == 200


def answer_status(port: int, path: str) -> int | None:
    """The status of one ``GET path`` on a fresh connection, None without an answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def terminate(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then wait; SIGKILL only if it hangs. Returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


@contextlib.contextmanager
def running_mock(log_dir: Path, name: str, extra: tuple[str, ...] = ()) -> Iterator[Mock]:
    mock = Mock(log_dir, name, extra)
    try:
        mock.start()
        yield mock
    finally:
        code = mock.stop()
        if code not in (*CLEAN_EXITS, None):
            print(f"  note: mock {name} exited with {code} (log {mock.log_path})")


# ---- the webhook receiver -------------------------------------------------------------------------------------------

class Receiver:
    """``bench/receiver.py --status N`` as its own process on a free loopback port."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.proc = subprocess.Popen([sys.executable, str(RECEIVER), "--status", str(status)],
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], START_DEADLINE_S)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("PORT "):
            self.stop()
            raise BenchError(f"the webhook receiver did not start (said {line!r})")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}/hooks"

    def counts(self) -> dict[str, int]:
        """``{"posts": N, "connections": M}``: webhook POSTs answered and TCP connections accepted so far."""
        counts: dict[str, int] = httpx.get(self.url.rsplit("/", 1)[0] + "/count", timeout=10).json()
        return counts

    def received(self) -> int:
        return self.counts()["posts"]

    def stop(self) -> None:
        terminate(self.proc)


@contextlib.contextmanager
def running_receiver(status: int) -> Iterator[Receiver]:
    receiver = Receiver(status)
    try:
        yield receiver
    finally:
        receiver.stop()


# ---- wrk ------------------------------------------------------------------------------------------------------------

def ensure_wrk() -> str:
    """wrk's path; installs the Debian package when it is missing, or explains why it cannot."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        raise BenchError("wrk is not installed and this machine has no apt-get: install wrk with your package "
                         "manager (Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk), then rerun")
    sudo: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None or subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode:
            raise BenchError("wrk is not installed and installing it needs root: run `sudo apt-get install -y wrk`, "
                             "then rerun")
        sudo = ["sudo", "-n"]
    install = [*sudo, apt, "install", "-y", "--no-install-recommends", "wrk"]
    print(f"wrk not found; installing the Debian package: {' '.join(install)}")
    if _run_apt(install) != 0:
        update = [*sudo, apt, "update"]
        print(f"install failed; refreshing the package lists first: {' '.join(update)}")
        if _run_apt(update) != 0 or _run_apt(install) != 0:
            raise BenchError("could not install wrk with apt-get (see the output above); install it by hand, "
                             "then rerun")
    found = shutil.which("wrk")
    if found is None:
        raise BenchError("apt-get reported success but wrk is still not on PATH")
    return found


def _run_apt(command: list[str]) -> int:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        return subprocess.run(command, env=env, timeout=600, stdin=subprocess.DEVNULL).returncode
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"  {exc}")
        return 1


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=10)
    return (out.stdout or out.stderr).splitlines()[0].split(" [")[0] if (out.stdout or out.stderr) else "wrk"


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    rate: float
    errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    command: str

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @classmethod
    def median(cls, runs: list[WrkResult]) -> WrkResult:
        """Runs of one measurement as one: counts summed, each rate and percentile the median of the runs'."""
        def mid(values: Iterable[float]) -> float:
            return float(statistics.median(values))

        return cls(
            requests=sum(r.requests for r in runs), duration_s=sum(r.duration_s for r in runs),
            rate=mid(r.rate for r in runs), errors={k: sum(r.errors[k] for r in runs) for k in runs[0].errors},
            p50_ms=mid(r.p50_ms for r in runs), p90_ms=mid(r.p90_ms for r in runs),
            p99_ms=mid(r.p99_ms for r in runs), max_ms=max(r.max_ms for r in runs),
            mean_ms=mid(r.mean_ms for r in runs), command=runs[0].command,
        )


def run_wrk(wrk: str, url: str, env: dict[str, str], *, seconds: float, connections: int, threads: int,
            ) -> WrkResult:
    """One wrk run with ``bench/lua/load.lua``; its ``done()`` prints the JSON line parsed here."""
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(LUA_SCRIPT),
               url]
    try:
        out = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True,
                             timeout=seconds + 60)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish: {' '.join(command)}") from exc
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if out.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    data = json.loads(line.split(" ", 1)[1])
    errors = {k: int(data[k]) for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")}
    shown = " ".join(f"{k}={v}" for k, v in env.items() if k in ("BENCH_MODE", "BENCH_DELAY_MS"))
    requests, duration_s = int(data["requests"]), data["duration_us"] / 1e6
    return WrkResult(
        requests=requests, duration_s=duration_s, rate=requests / duration_s if duration_s else 0.0, errors=errors,
        p50_ms=data["p50_us"] / 1e3, p90_ms=data["p90_us"] / 1e3, p99_ms=data["p99_us"] / 1e3,
        max_ms=data["max_us"] / 1e3, mean_ms=data["mean_us"] / 1e3,
        command=f"{shown} wrk -t{threads} -c{connections} -d{seconds:g}s -s bench/lua/load.lua URL",
    )


# ---- a streamed upload over a raw socket -------------------------------------------------------------------------

@dataclass(frozen=True)
class Streamed:
    status: int | None
    body_bytes_sent: int
    seconds_to_answer: float
    answer: bytes


def stream_upload(port: int, path: str, token: str, body: Iterator[bytes], body_length: int | None,
                  boundary: str, deadline_s: float = 120.0) -> Streamed:
    """POST a multipart body produced by ``body``, honest Content-Length or chunked when ``body_length`` is None.

    Sends while the server reads and stops at the first byte of the answer (the server refuses early), so at most
    the socket buffers' worth of data is in flight past that point; the body is never held in memory.
    """
    framing = f"Content-Length: {body_length}" if body_length is not None else "Transfer-Encoding: chunked"
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n{framing}\r\n\r\n").encode()
    chunks = body if body_length is not None else _chunked(body)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setblocking(False)
    started = time.perf_counter()
    pending, sent_total, answer = memoryview(head), 0, bytearray()
    answered_at: float | None = None
    sending = True
    try:
        while time.perf_counter() - started < deadline_s:
            readable, writable, _ = select.select([sock], [sock] if sending else [], [], 1.0)
            if readable:
                try:
                    data = sock.recv(65536)
                except (ConnectionResetError, BlockingIOError):
                    data = b""
                if answered_at is None:
                    answered_at = time.perf_counter()
                sending = False
                if not data:
                    break
                answer += data
                if _complete(answer):
                    break
                continue
            if not writable:
                continue
            if not pending:
                nxt = next(chunks, None)
                if nxt is None:
                    sending = False
                    continue
                pending = memoryview(nxt)
            try:
                n = sock.send(pending)
            except (BrokenPipeError, ConnectionResetError):
                sending = False
                continue
            except BlockingIOError:
                continue
            sent_total += n
            pending = pending[n:]
    finally:
        sock.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    body_sent = max(0, sent_total - len(head))  # counted with framing when chunked; close enough at this scale
    return Streamed(status, body_sent, (answered_at or time.perf_counter()) - started, bytes(answer))


def _chunked(body: Iterator[bytes]) -> Iterator[bytes]:
    for chunk in body:
        if chunk:
            yield f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    yield b"0\r\n\r\n"


def _complete(answer: bytearray) -> bool:
    end = answer.find(b"\r\n\r\n")
    if end < 0:
        return False
    for line in bytes(answer[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(answer) >= end + 4 + int(value.strip())
    return False


def multipart_stream(boundary: str, total: int, chunk_size: int = 256 * 1024) -> tuple[int, Iterator[bytes]]:
    """A multipart body of exactly ``total`` bytes with one PDF ``file`` part; (length, generator of chunks)."""
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    file_size = total - len(head) - len(tail)
    if file_size < 16:
        raise ValueError("total too small for a multipart body")

    def chunks() -> Iterator[bytes]:
        yield head
        block = b"%PDF-1.4\n" + b"0" * (chunk_size - 9)
        filler = b"0" * chunk_size
        left = file_size
        first = True
        while left > 0:
            piece = block if first else filler
            first = False
            yield piece if left >= len(piece) else piece[:left]
            left -= len(piece)
        yield tail

    return total, chunks()
