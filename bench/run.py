"""``make bench``: measure the mock the way partners run it, print every figure with its target and whether it is met.

The mock is installed first as partners install it, from its wheel into a venv of the bench's own
(``install_wheel``). Each measurement group starts its own ``zest-mock serve --clock manual --seed 1`` from there
(fresh in-memory state) on a free loopback port, waits for ``/public/hc``, measures, and stops it with SIGTERM.
Load comes from wrk (installed from the Debian packages when missing), webhooks go to a receiver running as a
separate process, memory is read from ``/proc/<pid>/status``. The exit status is 0 even when a target is missed
(this is a report); it is 1 only when the bench itself broke. ``--json`` also prints the figures as JSON
(``--json FILE`` writes them to FILE).

The webhook chain is judged against the network it runs on: ``bench/plain_posts.py`` first sends 10,000 plain POSTs
from the mock's own webhook client (in its own process) to the same always-500 receiver (T_plain); the full failing
chain of 10,000 events makes 60,000 attempts, so its cost beyond the network is ``T_chain - 6 x T_plain``, which the
target wants at most ``T_plain / 10``. The raw ``T_chain / T_plain`` is printed beside it, and so is the floor
(``bench/chain_floor.py``): the 60,000 attempt records alone, batched, which any design that keeps every attempt
in SQLite must write.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import hostile
import procs
from peers import PEER_NAMES, install_peers, running_peer
from procs import (
    BenchError,
    Mock,
    WrkResult,
    answer_status,
    busy_cores,
    cpu_seconds,
    ensure_wrk,
    multipart_stream,
    reset_peak,
    run_wrk,
    running_mock,
    running_receiver,
    stream_upload,
    wrk_version,
    zest_mock_command,
)

GROUPS = ("cold", "http", "upload", "webhooks", "memory", "hostile")
MB = 1_000_000
KIB = 1024
GB_BODY = 1_000_000_000  # the refused upload: 1 GB (10^9 bytes)
TEN_MIB = 10 * 1024 * 1024
ACCEPTED_MB = 15.0  # peak RSS growth allowed for one accepted 10 MiB upload
REFUSED_MB = 5.0  # ... and for one refused 1 GB upload
BULK_ROWS = 500
RETRY_CHAIN_S = 15 * 3600  # past the last retry at +14 h 35 min 30 s
ATTEMPTS_PER_DELIVERY = 6
TARGET_EVENTS = 10_000
PLAIN_POSTS = Path(__file__).resolve().parent / "plain_posts.py"
CHAIN_FLOOR = Path(__file__).resolve().parent / "chain_floor.py"
BUSY_CORES = 0.2  # cores kept busy by other processes (sampled between groups) above which the bench warns


@dataclass
class Figure:
    label: str
    shown: str
    target: str = "-"
    met: bool | None = None
    value: float | None = None
    unit: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    peers: dict[str, str] = field(default_factory=dict)  # the same figure measured on each peer, as shown
    ratio: str = "-"  # the mock's value against its target's reference, e.g. "0.21x faster peer (<= 0.33)"


@dataclass
class Options:
    seconds: float
    repeats: int
    connections: int
    threads: int
    cold_runs: int
    events: int
    resources: int
    log_dir: Path
    skipped: dict[str, str]  # peers that cannot run here, and why


# ---- cold start and the CLI -----------------------------------------------------------------------------------

FIRST_API_PATH = "/v1/spv-requests"  # the partner API's first request loads its routes (see mock_server/app.py)
CLI_CALLS = (("zest-mock --version", ("--version",)), ("zest-mock --help", ("--help",)),
             ("zest-mock clock show", ("clock", "show")))
CLI_RUNS_PER_COLD_RUN = 3  # a CLI call is short: more runs than the cold start to hold its median still


def cold_start(opts: Options) -> list[Figure]:
    runs, cpu, first_api = [], [], []
    cli_runs = opts.cold_runs * CLI_RUNS_PER_COLD_RUN
    for i in range(opts.cold_runs):
        with running_mock(opts.log_dir, f"cold{i}") as mock:
            runs.append(mock.started_in_s)
            cpu.append(mock.startup_cpu_s)
            if answer_status(mock.port, FIRST_API_PATH) is None:  # a 401 is an answer: the group loaded for it
                raise BenchError(f"no answer to GET {FIRST_API_PATH}")
            first_api.append(time.perf_counter() - mock.spawned_at)
        if i == 0:
            with running_mock(opts.log_dir, "cli") as mock:
                started = time.perf_counter()
                mock.call("GET", "/_mock/clock")  # the mock's first control call loads its control plane
                first_control = time.perf_counter() - started
                cli = {label: _cli_seconds(args, mock.url, cli_runs) for label, args in CLI_CALLS}
    median = statistics.median(runs)
    print(f"  zest-mock: {', '.join(f'{r:.3f}' for r in runs)} s wall; CPU used by then: "
          f"{', '.join(f'{c:.2f}' for c in cpu)} s")
    peers: dict[str, float] = {}
    shown_peers: dict[str, str] = {}
    for name in ("Prism", "WireMock"):
        if name in opts.skipped:
            continue
        peer_runs, peer_cpu = [], []
        for _ in range(opts.cold_runs):
            with running_peer(name, opts.log_dir) as peer:
                peer_runs.append(peer.started_in_s)
                peer_cpu.append(peer.startup_cpu_s)
        peers[name] = statistics.median(peer_runs)
        shown_peers[name] = f"{peers[name]:.2f} s (CPU {statistics.median(peer_cpu):.2f} s)"
        print(f"  {name}: {', '.join(f'{r:.3f}' for r in peer_runs)} s wall; CPU used by then: "
              f"{', '.join(f'{c:.2f}' for c in peer_cpu)} s")
    if peers:
        faster = min(peers.values())
        cold = Figure("cold start to first 200 (median)", f"{median:.2f} s (CPU {statistics.median(cpu):.2f} s)",
                      f"<= 1/3 of the faster peer ({faster / 3:.2f} s)", median <= faster / 3, round(median, 4), "s",
                      peers=shown_peers, ratio=f"{median / faster:.2f}x faster peer (<= 0.33)")
    else:
        cold = Figure("cold start to first 200 (median)", f"{median:.2f} s", "<= 1/3 of the faster peer (none ran)")
    cold.detail = {"runs_s": [round(r, 4) for r in runs], "cpu_s": [round(c, 3) for c in cpu],
                   "peers_s": {k: round(v, 4) for k, v in peers.items()}}
    first = statistics.median(first_api)
    print(f"  zest-mock, spawn to the first /v1 answer (its routes load with it): "
          f"{', '.join(f'{r:.3f}' for r in first_api)} s")
    figures = [cold, Figure("spawn to the first /v1 answer, right after the first 200 (median)", f"{first:.2f} s",
                            value=round(first, 4), unit="s")]
    print(f"  zest-mock, its first control call (loads the control plane): {first_control * 1000:.0f} ms")
    figures.append(Figure("first /_mock call of a fresh mock (its routes load with it)",
                          f"{first_control * 1000:.0f} ms", value=round(first_control, 4), unit="s"))
    for label, seconds in cli.items():
        print(f"  {label}: {seconds * 1000:.0f} ms (median of {cli_runs}, against a mock already answering "
              "control calls)")
        figures.append(Figure(f"{label} (median)", f"{seconds * 1000:.0f} ms",
                              f"<= 1/3 of the mock's cold start ({median / 3 * 1000:.0f} ms)", seconds <= median / 3,
                              round(seconds, 4), "s", ratio=f"{seconds / median:.2f}x cold start (<= 0.33)"))
    return figures


def _cli_seconds(args: tuple[str, ...], url: str, runs: int) -> float:
    """Median wall time of one ``zest-mock`` invocation, spawn to exit, against the running mock at ``url``."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run([zest_mock_command(), *args], env={**os.environ, "ZEST_MOCK_URL": url},
                              capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise BenchError(f"zest-mock {' '.join(args)} exited {done.returncode}: {done.stderr[-500:]!r}")
    return statistics.median(times)


# ---- HTTP throughput and latency ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Endpoint:
    mode: str
    label: str
    peers: tuple[str, ...]  # the peers measured on the same request
    reference: str  # the peer whose throughput the target is a share of ("" when the figure has no target)
    share: float


P99_MS = 25.0
ENDPOINTS = (
    Endpoint("get_spv", "GET /v1/spv-requests/{slug}", ("Prism", "WireMock", "bare ASGI"), "WireMock", 1.0),
    Endpoint("post_investor", "POST /v1/investors (1 row)", ("WireMock", "bare ASGI"), "WireMock", 0.5),
    Endpoint("post_spv", "POST /v1/spv-requests", (), "", 0.0),
)


def http_load(opts: Options) -> list[Figure]:
    wrk = ensure_wrk()
    print(f"  load generator: {wrk_version(wrk)}, {opts.threads} threads, {opts.connections} connections, "
          f"median of {opts.repeats} runs of {opts.seconds:g} s, each server fresh and warmed up first")
    figures: list[Figure] = []
    for endpoint in ENDPOINTS:
        measured = {name: _wrk_peer(opts, wrk, name, endpoint) for name in endpoint.peers
                    if name not in opts.skipped}
        peers = {name: result for name, (result, _) in measured.items()}
        reference = peers.get(endpoint.reference)
        target_rate = reference.rate * endpoint.share if reference else None
        saturated, saturated_cpu = _wrk_group(opts, wrk, endpoint, None)
        # Paced: the rate the target asks for (half the mock's own saturated rate when there is no target).
        paced, paced_cpu = _wrk_group(opts, wrk, endpoint, target_rate or saturated.rate / 2)
        if reference and target_rate:
            share = "" if endpoint.share == 1 else f"{endpoint.share:g} x "
            target = f">= {share}{endpoint.reference} ({target_rate:,.0f} req/s)"
            met: bool | None = saturated.rate >= target_rate and not saturated.error_count
            ratio = f"{saturated.rate / reference.rate:.2f}x {endpoint.reference} (>= {endpoint.share:g})"
        else:
            target, met, ratio = "-" if not endpoint.reference else f"vs {endpoint.reference} (did not run)", None, "-"
        figures += [
            Figure(f"{endpoint.label}: throughput",
                   f"{saturated.rate:,.0f} req/s ({_cpu_per_request(saturated, saturated_cpu)})" + _errors(saturated),
                   target, met,
                   round(saturated.rate, 1), "req/s",
                   {**_wrk_detail(saturated), "mock_cpu_share": round(saturated_cpu, 3),
                    "peers": {name: _wrk_detail(r) for name, r in peers.items()}},
                   peers={name: f"{r.rate:,.0f} req/s ({_cpu_per_request(r, share)})" + _errors(r)
                          for name, (r, share) in measured.items()}, ratio=ratio),
            Figure(f"{endpoint.label}: p50 / p99, saturated", f"{saturated.p50_ms:.1f} / {saturated.p99_ms:.1f} ms",
                   f"p99 < {P99_MS:g} ms", saturated.p99_ms < P99_MS, round(saturated.p99_ms, 2), "ms",
                   peers={name: f"{r.p50_ms:.1f} / {r.p99_ms:.1f} ms" for name, r in peers.items()},
                   ratio=f"{saturated.p99_ms / P99_MS:.2f}x limit (< 1)"),
            Figure(f"{endpoint.label}: p50 / p99, paced", f"{paced.p50_ms:.1f} / {paced.p99_ms:.1f} ms at "
                   f"{paced.rate:,.0f} req/s" + _errors(paced), f"p99 < {P99_MS:g} ms",
                   paced.p99_ms < P99_MS and not paced.error_count, round(paced.p99_ms, 2), "ms",
                   {**_wrk_detail(paced), "mock_cpu_share": round(paced_cpu, 3)},
                   ratio=f"{paced.p99_ms / P99_MS:.2f}x limit (< 1)"),
        ]
    return figures


def _cpu_per_request(result: WrkResult, cpu_share: float) -> str:
    """The server's CPU time per answered request: what load from other processes changes least."""
    return f"CPU {cpu_share / result.rate * 1e6:,.0f} us/req" if result.rate else "no answers"


def _measured_runs(opts: Options, wrk: str, url: str, pid: int,
                   env: dict[str, str]) -> tuple[list[WrkResult], float]:
    """``opts.repeats`` wrk runs against the server at ``url`` (process ``pid``): each run's result, and the median
    share of a core the server was on CPU."""
    runs, shares = [], []
    for repeat in range(opts.repeats):
        cpu_before = cpu_seconds(pid)
        runs.append(run_wrk(wrk, url, {**env, "BENCH_RUN": f"run{repeat}"}, seconds=opts.seconds,
                            connections=opts.connections, threads=opts.threads))
        shares.append((cpu_seconds(pid) - cpu_before) / runs[-1].duration_s)
    return runs, statistics.median(shares)


def _wrk_peer(opts: Options, wrk: str, name: str, endpoint: Endpoint) -> tuple[WrkResult, float]:
    """A fresh peer, a 3 s warm-up (the JVM compiles its hot path meanwhile), then the measured runs."""
    with running_peer(name, opts.log_dir) as peer:
        env = {"BENCH_MODE": endpoint.mode, "BENCH_TOKEN": "bench", "BENCH_SLUG": "svr_bench000001"}
        run_wrk(wrk, peer.url, {**env, "BENCH_RUN": "warm"}, seconds=3, connections=opts.connections,
                threads=opts.threads)
        runs, share = _measured_runs(opts, wrk, peer.url, peer.pid, env)
        result = WrkResult.median(runs)
    print(f"  {endpoint.label} on {name}: {result.rate:,.0f} req/s, p50 {result.p50_ms:.1f} ms, p99 "
          f"{result.p99_ms:.1f} ms, on CPU {share:.0%} ({_cpu_per_request(result, share)})"
          + (f", errors {result.errors}" if result.error_count else ""))
    return result, share


def _wrk_group(opts: Options, wrk: str, endpoint: Endpoint, paced_rate: float | None) -> tuple[WrkResult, float]:
    """A fresh mock, a warm-up (1 s; 2 s when paced, as it calibrates the pause), then the measured run.

    ``paced_rate``: offer that many requests per second instead of saturating the mock."""
    paced = paced_rate is not None
    with running_mock(opts.log_dir, endpoint.mode + ("-paced" if paced else "")) as mock:
        env = {"BENCH_MODE": endpoint.mode, "BENCH_TOKEN": mock.token()}
        if endpoint.mode == "get_spv":
            env["BENCH_SLUG"] = mock.create_spv_request()
        cycle_ms = opts.connections * 1000 / (paced_rate or 1.0)  # per connection, to offer the target rate
        if paced:
            env["BENCH_DELAY_MS"] = f"{cycle_ms:.2f}"
        warm = run_wrk(wrk, mock.url, {**env, "BENCH_RUN": "warm"}, seconds=2 if paced else 1,
                       connections=opts.connections, threads=opts.threads)
        if paced:
            # The warm-up calibrates the pause: each cycle also holds the response time and wrk's timer slack.
            overhead_ms = opts.connections * 1000 / max(warm.rate, 1.0) - cycle_ms
            env["BENCH_DELAY_MS"] = f"{max(0.0, cycle_ms - overhead_ms):.2f}"
        before = _created(mock, endpoint.mode)
        runs, cpu_share = _measured_runs(opts, wrk, mock.url, mock.pid, env)
        result = WrkResult.median(runs)
        created = _created(mock, endpoint.mode) - before
        ok = result.requests - result.errors["status_errors"]
        if endpoint.mode != "get_spv" and created < ok:
            raise BenchError(f"{endpoint.label}: {ok} answers but only {created} new resources; the load script "
                             "did not send fresh ids")
        mode = f"paced at {paced_rate:,.0f} req/s" if paced else "saturated"
        errors = {k: v for k, v in result.errors.items() if v}
        print(f"  {endpoint.label} {mode}: {result.rate:,.0f} req/s, p50 {result.p50_ms:.1f} ms, p90 "
              f"{result.p90_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, max {result.max_ms:.1f} ms, mock on CPU "
              f"{cpu_share:.0%} ({_cpu_per_request(result, cpu_share)})" + (f", errors {errors}" if errors else ""))
        if len(runs) > 1:
            print("    runs: " + "; ".join(f"{r.rate:,.0f} req/s p99 {r.p99_ms:.1f} ms" for r in runs))
        return result, cpu_share


def _created(mock: Mock, mode: str) -> int:
    if mode == "get_spv":
        return 0
    tallies = mock.call("GET", "/_mock/state", expect=(200,))["partners"]["dev-partner"]
    return int(tallies["investors" if mode == "post_investor" else "spvRequests"]["count"])


def _errors(result: WrkResult) -> str:
    return f" ({result.error_count} errors!)" if result.error_count else ""


def _wrk_detail(result: WrkResult) -> dict[str, Any]:
    return {"requests": result.requests, "seconds": round(result.duration_s, 3), "rate": round(result.rate, 1),
            "p50_ms": result.p50_ms, "p90_ms": result.p90_ms, "p99_ms": result.p99_ms, "max_ms": result.max_ms,
            "mean_ms": result.mean_ms, "errors": result.errors, "command": result.command}


# ---- uploads --------------------------------------------------------------------------------------------------------

def uploads(opts: Options) -> list[Figure]:
    figures = [_accepted_upload(opts)]
    for chunked in (False, True):
        figures.append(_refused_upload(opts, chunked))
    return figures


@contextlib.contextmanager
def _upload_mock(opts: Options, name: str) -> Iterator[tuple[Mock, str]]:
    """A fresh mock with a real subscription, warmed by one small accepted form upload: (mock, forms path)."""
    with running_mock(opts.log_dir, name) as mock:
        vehicle, person = mock.subscription()
        path = f"/v1/spvs/{vehicle}/subscription/{person}/forms"
        small = b"%PDF-1.4\n" + b"1" * 1024
        mock.call("POST", path, expect=(201,), files={"file": ("warm.pdf", small, "application/pdf")})
        yield mock, path


def _accepted_upload(opts: Options) -> Figure:
    with _upload_mock(opts, "upload-10mib") as (mock, path):
        data = b"%PDF-1.4\n" + os.urandom(TEN_MIB - 9)
        resettable = reset_peak(mock.pid)
        before = mock.memory()
        started = time.perf_counter()
        mock.call("POST", path, expect=(201,), files={"file": ("ten.pdf", data, "application/pdf")})
        seconds = time.perf_counter() - started
        time.sleep(0.2)
        after = mock.memory()
    growth = (after.hwm_kib - before.rss_kib) * KIB / MB
    print(f"  10 MiB form upload: 201 in {seconds * 1000:.0f} ms, peak RSS +{growth:.1f} MB")
    return Figure("upload 10 MiB form (accepted, 201): peak RSS growth",
                  f"+{growth:.1f} MB ({seconds * 1000:.0f} ms)", f"< {ACCEPTED_MB:g} MB", growth < ACCEPTED_MB,
                  round(growth, 2), "MB", {"seconds": round(seconds, 4), "hwm_reset": resettable},
                  ratio=f"{growth / ACCEPTED_MB:.2f}x limit (< 1)")


def _refused_upload(opts: Options, chunked: bool) -> Figure:
    framing = "chunked, no Content-Length" if chunked else "with Content-Length"
    with _upload_mock(opts, "upload-1gb-" + ("chunked" if chunked else "length")) as (mock, path):
        boundary = "bench" + uuid.uuid4().hex
        total, body = multipart_stream(boundary, GB_BODY)
        resettable = reset_peak(mock.pid)
        before = mock.memory()
        result = stream_upload(mock.port, path, mock.token(), body, None if chunked else total, boundary)
        time.sleep(0.3)
        after = mock.memory()
        mock.call("GET", "/public/hc", expect=(200,))
    growth = (after.hwm_kib - before.rss_kib) * KIB / MB
    note = "" if resettable else " (peak not resettable: upper bound)"
    sent = result.body_bytes_sent / MB
    print(f"  1 GB upload {framing}: {result.status} after {result.seconds_to_answer * 1000:.0f} ms and {sent:.1f} MB "
          f"sent, peak RSS +{growth:.1f} MB{note}")
    if result.status != 413:
        return Figure(f"upload 1 GB {framing}: refused", f"answered {result.status}, not 413",
                      f"413, peak RSS < {REFUSED_MB:g} MB",
                      False, None, "", {"answer": result.answer[:300].decode(errors="replace")})
    answered_ms = result.seconds_to_answer * 1000
    return Figure(f"upload 1 GB {framing}: 413, peak RSS growth",
                  f"+{growth:.1f} MB ({sent:.1f} MB sent before the 413 at {answered_ms:.0f} ms){note}",
                  f"< {REFUSED_MB:g} MB", growth < REFUSED_MB, round(growth, 2), "MB",
                  {"body_mb_sent_before_answer": round(sent, 2), "hwm_reset": resettable,
                   "ms_to_answer": round(result.seconds_to_answer * 1e3, 1)},
                  ratio=f"{growth / REFUSED_MB:.2f}x limit (< 1)")


# ---- webhooks -------------------------------------------------------------------------------------------------------

def webhooks(opts: Options) -> list[Figure]:
    return [*_webhooks_failing(opts), _webhooks_healthy(opts)]


def _parked_events(mock: Mock, count: int) -> None:
    """``count`` investor.created events with no endpoint set yet: their deliveries wait, parked."""
    created = 0
    for batch in range(0, count, BULK_ROWS):
        created += mock.create_investors(f"hook-{batch}", min(BULK_ROWS, count - batch))
    mock.advance(0)
    parked = mock.delivery_counts().get("awaiting_endpoint", 0)
    if created != count or parked != count:
        raise BenchError(f"expected {count} parked deliveries, got {created} investors created and {parked} parked")


def _script(script: Path, *args: str) -> dict[str, Any]:
    """Run one of the bench's helper scripts in its own process; returns the JSON line it prints."""
    done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise BenchError(f"bench/{script.name} exited {done.returncode}: {done.stderr[-500:]!r}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _webhooks_failing(opts: Options) -> list[Figure]:
    """The retry chain against the network it runs on: T_plain, then T_chain, on the same 500 receiver.

    The chain of ``n`` events makes ``attempts = 6 n`` POSTs, so ``attempts / n * T_plain`` of it is the network
    and the client; what is left, ``T_chain - attempts / n * T_plain``, is what the chain itself costs (scheduler,
    outbox rows, retry bookkeeping), judged against ``T_plain / 10``."""
    n = opts.events
    with running_receiver(500) as receiver, running_mock(opts.log_dir, "webhooks-failing") as mock:
        _parked_events(mock, n)
        plain = _script(PLAIN_POSTS, receiver.url, "--count", str(n))
        received_before = receiver.received()
        if plain["statuses"] != {"500": n} or received_before != n:
            raise BenchError(f"plain POSTs: expected {n} answered 500, got {plain['statuses']} "
                             f"({received_before} received)")
        started, cpu_before = time.perf_counter(), cpu_seconds(mock.pid)
        mock.call("PUT", "/_mock/webhooks/endpoint", expect=(200,), json={"url": receiver.url})
        ran = mock.advance(RETRY_CHAIN_S)
        seconds = time.perf_counter() - started
        cpu_chain = cpu_seconds(mock.pid) - cpu_before
        dead = len(mock.call("GET", "/_mock/webhooks/dead-letter", expect=(200,))["items"])
        received = receiver.received() - received_before
        counts = mock.delivery_counts()
    attempts = n * ATTEMPTS_PER_DELIVERY
    if dead != n or received != attempts:
        raise BenchError(f"failing receiver: expected {n} dead deliveries and {attempts} attempts received, got "
                         f"{dead} dead and {received} received ({counts})")
    t_plain, cpu_plain = float(plain["seconds"]), float(plain["cpu_seconds"])
    floor = float(_script(CHAIN_FLOOR, "--events", str(n), "--attempts", str(ATTEMPTS_PER_DELIVERY))["seconds"])
    beyond = seconds - attempts / n * t_plain
    beyond_cpu = cpu_chain - attempts / n * cpu_plain
    rate = attempts / seconds
    print(f"  {n:,} plain POSTs from the webhook client to the 500 receiver: {t_plain:.2f} s (client CPU "
          f"{cpu_plain:.2f} s)")
    print(f"  {n:,} events to the 500 receiver: {attempts:,} attempts, {dead:,} dead, {seconds:.1f} s "
          f"({rate:,.0f} attempts/s; advance ran {ran['count']:,} jobs; mock CPU {cpu_chain:.1f} s); beyond the "
          f"network: {beyond:.1f} s wall, {beyond_cpu:.1f} s CPU")
    print(f"  floor (bench/chain_floor.py): the {attempts:,} attempt rows and delivery statuses alone, one "
          f"transaction per wave, no job, signature or HTTP: {floor:.2f} s = {floor / t_plain:.2f}x T_plain")
    judged = n == TARGET_EVENTS  # the target is for 10,000 events; another --events is reported, not judged
    target = f"<= 1/10 of T_plain ({t_plain / 10:.2f} s)"
    detail = {"attempts": attempts, "attempts_per_s": round(rate, 1), "dead": dead, "chain_s": round(seconds, 3),
              "chain_cpu_s": round(cpu_chain, 3), "plain_s": t_plain, "plain_cpu_s": cpu_plain,
              "beyond_network_s": round(beyond, 3), "beyond_network_cpu_s": round(beyond_cpu, 3)}
    return [
        Figure(f"webhooks: {n:,} plain POSTs from the webhook client to a 500 receiver (T_plain)",
               f"{t_plain:.2f} s (client CPU {cpu_plain:.2f} s)", "-", None, t_plain, "s"),
        Figure(f"webhooks: {n:,} events to a 500 receiver, full retry chain (T_chain)",
               f"{seconds:.1f} s ({attempts:,} attempts, {rate:,.0f}/s, CPU {cpu_chain:.1f} s)", "-", None,
               round(seconds, 3), "s", detail, ratio=f"{seconds / t_plain:.1f}x T_plain"),
        Figure(f"webhooks: chain cost beyond the network (T_chain - {attempts // n} x T_plain)",
               f"{beyond:.1f} s (CPU {beyond_cpu:.1f} s)",
               target if judged else f"({target} for {TARGET_EVENTS:,})", beyond <= t_plain / 10 if judged else None,
               round(beyond, 3), "s", detail, ratio=f"{beyond / t_plain:.2f}x T_plain (<= 0.1)"),
        Figure(f"webhooks: floor beyond the network, the {attempts:,} attempt records alone, batched per wave",
               f"{floor:.2f} s", "-", None, round(floor, 3), "s", ratio=f"{floor / t_plain:.2f}x T_plain"),
    ]


def _webhooks_healthy(opts: Options) -> Figure:
    n = opts.events
    with running_receiver(200) as receiver, running_mock(opts.log_dir, "webhooks-healthy") as mock:
        _parked_events(mock, n)
        started, cpu_before = time.perf_counter(), cpu_seconds(mock.pid)
        mock.call("PUT", "/_mock/webhooks/endpoint", expect=(200,), json={"url": receiver.url})
        mock.advance(0)
        seconds = time.perf_counter() - started
        cpu_share = (cpu_seconds(mock.pid) - cpu_before) / seconds
        delivered = mock.delivery_counts().get("delivered", 0)
        received = receiver.received()
    if delivered != n or received != n:
        raise BenchError(f"healthy receiver: expected {n} delivered, got {delivered} delivered, {received} received")
    rate = n / seconds
    print(f"  {n:,} events to a 200 receiver: all delivered in {seconds:.2f} s ({rate:,.0f}/s; mock on CPU "
          f"{cpu_share:.0%})")
    return Figure(f"webhooks: {n:,} events to a 200 receiver", f"{rate:,.0f} events/s ({seconds:.2f} s)", "-", None,
                  round(rate, 1), "events/s", {"seconds": round(seconds, 3), "mock_cpu_share": round(cpu_share, 3)})


# ---- memory ----------------------------------------------------------------------------------------------------

def memory(opts: Options) -> list[Figure]:
    with running_mock(opts.log_dir, "memory") as mock:
        time.sleep(0.5)
        idle = mock.memory()
        started = time.perf_counter()
        created = sum(mock.create_investors(f"mem-{i}", BULK_ROWS) for i in range(opts.resources // BULK_ROWS))
        insert_s = time.perf_counter() - started
        mock.advance(0)  # their investor.created deliveries settle (parked: no endpoint)
        full = mock.memory()
    if created != opts.resources // BULK_ROWS * BULK_ROWS:
        raise BenchError(f"expected {opts.resources} investors created, got {created}")
    print(f"  idle RSS {idle.rss_kib * KIB / MB:.1f} MB; {created:,} investors in {insert_s:.1f} s; RSS "
          f"{full.rss_kib * KIB / MB:.1f} MB")
    return [
        Figure("RSS idle (after start)", f"{idle.rss_kib * KIB / MB:.1f} MB", "-", None,
               round(idle.rss_kib * KIB / MB, 1), "MB"),
        Figure(f"RSS with {created:,} investors (+ their events)",
               f"{full.rss_kib * KIB / MB:.1f} MB ({created / insert_s:,.0f} rows/s in bulk)", "-", None,
               round(full.rss_kib * KIB / MB, 1), "MB",
               {"investors": created, "insert_seconds": round(insert_s, 2),
                "peak_mb": round(full.hwm_kib * KIB / MB, 1)}),
    ]


# ---- the report -----------------------------------------------------------------------------------------------------

def hostile_clients(opts: Options) -> list[Figure]:
    return [Figure(**figure) for figure in hostile.measure(opts.log_dir)]


RUNNERS: dict[str, Callable[[Options], list[Figure]]] = {
    "cold": cold_start, "http": http_load, "upload": uploads, "webhooks": webhooks, "memory": memory,
    "hostile": hostile_clients}


def install_wheel(tmp: Path) -> Path:
    """Install the mock as partners do, from its wheel, into a venv of the bench's own (its dependencies come from
    the running venv through a ``.pth`` line); returns that venv's ``zest-mock``.

    An editable install differs from a wheel install at every start: its import hook runs at interpreter start-up
    (~10 ms here, on the CLI and the server alike), and under PYTHONDONTWRITEBYTECODE (set on some CI machines)
    nothing is byte-compiled. The wheel's modules are compiled by pip as it installs them."""
    root = Path(__file__).resolve().parent.parent
    dist, venv = tmp / "dist", tmp / "venv"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": ""}
    python = venv / "bin" / "python"

    def run(command: list[str]) -> str:
        done = subprocess.run(command, timeout=600, env=env, capture_output=True, text=True, cwd=tmp)
        if done.returncode != 0:
            raise BenchError(f"installing the wheel failed at `{' '.join(command)}`:\n{done.stderr[-2000:]}")
        return done.stdout

    try:
        run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(dist), str(root)])
    finally:
        shutil.rmtree(root / "build", ignore_errors=True)  # setuptools' staging copy: stale files would ship later
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    purelib = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip()
    Path(purelib, "zest-bench-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
         *map(str, dist.glob("*.whl"))])
    command = venv / "bin" / "zest-mock"
    if not command.exists():
        raise BenchError(f"the wheel install made no {command}")
    return command


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()}


def table(figures: list[Figure]) -> str:
    rows = [("figure", "zest-mock", *PEER_NAMES, "target", "vs target", "met")]
    rows += [(f.label, f.shown, *(f.peers.get(name, "-") for name in PEER_NAMES), f.target, f.ratio,
              "-" if f.met is None else "yes" if f.met else "no") for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def summary(figures: list[Figure], seconds: float, busy: dict[str, float]) -> str:
    judged = [f for f in figures if f.met is not None]
    missed = [f.label for f in judged if not f.met]
    tail = f"; missed: {'; '.join(missed)}" if missed else ""
    others = f", other processes kept up to {max(busy.values()):.2f} cores busy" if busy else ""
    return (f"bench: {len(judged) - len(missed)}/{len(judged)} targets met, {len(figures) - len(judged)} figures "
            f"without a target, {seconds:.0f} s{others}{tail}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", action="append", choices=GROUPS, help="run only this group (repeatable)")
    parser.add_argument("--json", metavar="FILE", nargs="?", const="-",
                        help="also dump the figures as JSON, to stdout or to FILE")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each measured wrk run")
    parser.add_argument("--repeats", type=int, default=3, help="measured wrk runs per figure (median reported)")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1 leaves a core to the mock)")
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--events", type=int, default=TARGET_EVENTS, help="webhook events per webhook measurement")
    parser.add_argument("--resources", type=int, default=100_000, help="investors stored for the memory figure")
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 120 or not 1 <= args.repeats <= 10 or not 1 <= args.connections <= 1000 \
            or args.threads < 1:
        parser.error("--seconds 1..120, --repeats 1..10, --connections 1..1000, --threads >= 1")
    if not 1 <= args.cold_runs <= 50 or not 1 <= args.events <= 100_000 or not 500 <= args.resources <= 1_000_000:
        parser.error("--cold-runs 1..50, --events 1..100000, --resources 500..1000000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    groups = [g for g in GROUPS if not args.only or g in args.only]
    started = time.perf_counter()
    host = machine()
    print(f"zest-mock bench on {host['cpu']}, {host['cores']} cores, Python {host['python']}, Linux {host['kernel']}")
    figures: list[Figure] = []
    busy: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="zest-bench-") as tmp:
        try:
            procs.INSTALLED[:] = [install_wheel(Path(tmp))]
        except BenchError as exc:
            print(f"\nbench broke before its groups: {exc}", file=sys.stderr)
            return 1
        skipped = install_peers() if {"cold", "http"} & set(groups) else {}
        for name, why in skipped.items():
            print(f"{name} skipped: {why}")
        opts = Options(args.seconds, args.repeats, args.connections, args.threads, args.cold_runs, args.events,
                       args.resources, Path(tmp), skipped)
        try:
            for group in groups:
                busy[group] = round(busy_cores(), 2)
                warn = " (busy: figures will be pessimistic)" if busy[group] > BUSY_CORES else ""
                print(f"[{group}] other processes keep {busy[group]:.2f} of {host['cores']} cores busy{warn}",
                      flush=True)
                figures += RUNNERS[group](opts)
        except BenchError as exc:
            print(f"\nbench broke in [{group}]: {exc}", file=sys.stderr)
            return 1
    elapsed = time.perf_counter() - started
    print()
    print(table(figures))
    print(summary(figures, elapsed, busy))
    if args.json:
        document = {"machine": host, "command": " ".join(["python bench/run.py", *(sys.argv[1:] if argv is None
                                                                                   else argv)]),
                    "seconds": round(elapsed, 1), "busy_cores_before_group": busy,
                    "figures": [asdict(f) for f in figures]}
        text = json.dumps(document, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
