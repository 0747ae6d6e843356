"""The peers the bench measures the mock against, each as its own process on a free loopback port.

- Prism (``@stoplight/prism-cli``, on node) serving the published OpenAPI document: what a partner gets from a
  document-driven mock;
- WireMock (the standalone jar that the npm ``wiremock`` package ships, on java) with static stubs: what a partner
  gets from hand-written stubs;
- a bare ASGI app on the mock's own uvicorn + httptools (``bench/bare_asgi.py``): the ceiling of the stack.

Prism and WireMock are installed from the npm registry into ``bench/.peers/`` (gitignored) on first use; a peer
whose runtime (node, java) is missing is skipped with a line saying so, and the bench goes on without it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from procs import START_DEADLINE_S, BenchError, cpu_seconds, free_port, memory, terminate

BENCH_DIR = Path(__file__).resolve().parent
PEERS_DIR = BENCH_DIR / ".peers"
PRISM_VERSION = "5.16.0"
WIREMOCK_VERSION = "3.13.2"
PRISM_JS = PEERS_DIR / "node_modules" / "@stoplight" / "prism-cli" / "dist" / "index.js"
WIREMOCK_JAR = PEERS_DIR / "node_modules" / "wiremock" / "build" / f"wiremock-standalone-{WIREMOCK_VERSION}.jar"
DOCUMENT = BENCH_DIR.parent.parent / "shared" / "reference" / "zest-openapi.json"
BARE_APP = BENCH_DIR / "bare_asgi.py"
PEER_NAMES = ("Prism", "WireMock", "bare ASGI")

# WireMock's static stubs: the health check, one SPV request, one created investor (bodies shaped like the API's).
SPV_REQUEST = {
    "spvRequestSlug": "svr_bench000001", "status": "pending-review", "templateId": "syndicate_secondary",
    "templateVersion": "1.0.0", "tenantSlug": "dev-tenant", "clientId": "dev-partner",
    "attributes": {"underlyingCompanySlug": "co_acme", "currency": "USD", "shareClasses": [
        {"name": "Class A", "managementFeePercent": "2.0", "carryPercent": "20.0"}]},
    "rejectionReason": None, "cancelledAt": None, "approvedAt": None, "materialisedRefs": None,
    "feesAndCarry": None, "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"}
INVESTOR_CREATED = {"results": [{"index": 0, "partnerInvestorId": "bench-1", "status": "created",
                                 "zestPersonId": "per_bench000001"}]}
STUBS = {
    "hc": {"request": {"method": "GET", "urlPath": "/public/hc"},
           "response": {"status": 200, "jsonBody": {"status": "ok"}}},
    "spv-request": {"request": {"method": "GET", "urlPathPattern": "/v1/spv-requests/[^/]+"},
                    "response": {"status": 200, "jsonBody": SPV_REQUEST}},
    "investors": {"request": {"method": "POST", "urlPath": "/v1/investors"},
                  "response": {"status": 201, "jsonBody": INVESTOR_CREATED}},
}


def install_peers() -> dict[str, str]:
    """Install Prism and WireMock into ``bench/.peers/`` when absent; returns {peer: why it is skipped}."""
    node, npm, java = shutil.which("node"), shutil.which("npm"), shutil.which("java")
    if node is None or npm is None:
        return dict.fromkeys(("Prism", "WireMock"), "node/npm not found (install Node.js to measure it)")
    if not (PRISM_JS.exists() and WIREMOCK_JAR.exists()):
        command = [npm, "install", "--prefix", str(PEERS_DIR), "--no-audit", "--no-fund", "--no-save",
                   f"@stoplight/prism-cli@{PRISM_VERSION}", f"wiremock@{WIREMOCK_VERSION}"]
        print(f"  installing the peers into bench/.peers: npm {' '.join(command[1:])}", flush=True)
        PEERS_DIR.mkdir(exist_ok=True)
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            done = subprocess.CompletedProcess(command, 1, "", "npm install did not finish in 600 s")
        if done.returncode != 0:
            tail = " / ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            return dict.fromkeys(("Prism", "WireMock"), f"npm install failed ({tail})")
    skipped: dict[str, str] = {}
    if not DOCUMENT.exists():
        skipped["Prism"] = f"the published document {DOCUMENT} is missing"
    elif not PRISM_JS.exists():
        skipped["Prism"] = f"{PRISM_JS} missing after npm install"
    if java is None:
        skipped["WireMock"] = "java not found (install a JRE 11+ to measure it)"
    elif not WIREMOCK_JAR.exists():
        skipped["WireMock"] = f"{WIREMOCK_JAR.name} missing from the npm wiremock package"
    return skipped


@dataclass
class Peer:
    """One running peer: its name, URL, process and how long it took to answer its first 200."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    started_in_s: float = 0.0
    startup_cpu_s: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_mb(self) -> float:
        return memory(self.pid).rss_kib * 1024 / 1e6


def _command(name: str, port: int, root: Path) -> list[str]:
    if name == "Prism":
        return [str(shutil.which("node")), str(PRISM_JS), "mock", "-h", "127.0.0.1", "-p", str(port),
                "--verboseLevel", "warn", str(DOCUMENT)]
    if name == "WireMock":
        mappings = root / "mappings"
        mappings.mkdir(parents=True, exist_ok=True)
        for stub, mapping in STUBS.items():
            mapping["response"]["headers"] = {"Content-Type": "application/json"}
            (mappings / f"{stub}.json").write_text(json.dumps(mapping))
        return [str(shutil.which("java")), "-jar", str(WIREMOCK_JAR), "--port", str(port), "--bind-address",
                "127.0.0.1", "--root-dir", str(root), "--disable-banner"]
    if name == "bare ASGI":
        return [sys.executable, str(BARE_APP), str(port)]
    raise ValueError(name)


@contextlib.contextmanager
def running_peer(name: str, work_dir: Path) -> Iterator[Peer]:
    """Start ``name``, wait for its first 200 from ``GET /public/hc``, yield it, stop it."""
    port = free_port()
    root = work_dir / f"{name.replace(' ', '-').lower()}-{port}"
    command = _command(name, port, root)
    root.mkdir(parents=True, exist_ok=True)
    with (root / "log").open("wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    peer = Peer(name, port, proc)
    try:
        while not _ok(port):
            if proc.poll() is not None:
                raise BenchError(f"{name} exited with {proc.returncode} before answering:\n"
                                 f"{(root / 'log').read_text(errors='replace')[-2000:]}")
            if time.perf_counter() - started > START_DEADLINE_S * 2:
                raise BenchError(f"{name} did not answer /public/hc within {START_DEADLINE_S * 2:.0f} s")
            time.sleep(0.002)
        peer.started_in_s = time.perf_counter() - started
        peer.startup_cpu_s = cpu_seconds(proc.pid)
        yield peer
    finally:
        terminate(proc)


def _ok(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/public/hc", headers={"Authorization": "Bearer bench"})
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()
