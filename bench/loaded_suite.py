"""Does the suite hold on a busy machine? Run it N times while CPU hogs keep every core busy; print pass counts.

    .venv/bin/python bench/loaded_suite.py --runs 3            # the suite in this checkout, one hog per core
    .venv/bin/python bench/loaded_suite.py --runs 3 --clone    # `make test` in a fresh clone of HEAD (venv too)
    .venv/bin/python bench/loaded_suite.py --runs 5 -- contract_tests/test_scenario_runner.py -k careless

Each hog is a process of this script spinning in a loop; they start before the first run and are stopped (by
their own pids) after the last. Each run's exit status, duration and pytest summary line are printed, with the
names of the tests that failed. A report, not a test: not part of ``make test``; the exit status is 0 whatever the
suite did, 1 only when the bench itself broke.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = re.compile(r"^=*\s*(\d+ (passed|failed).*) in [\d.]+s", re.M)
FAILED = re.compile(r"^(FAILED|ERROR) (\S+)", re.M)


@dataclass
class Run:
    number: int
    returncode: int
    seconds: float
    summary: str
    failed: list[str]
    output: str

    @property
    def passed(self) -> bool:
        return self.returncode == 0


def spin() -> None:
    while True:
        pass


@contextmanager
def hogs(count: int) -> Iterator[list[int]]:
    """``count`` busy processes for the duration of the block."""
    processes = [multiprocessing.Process(target=spin, daemon=True, name=f"cpu-hog-{i}") for i in range(count)]
    for process in processes:
        process.start()
    try:
        yield [process.pid for process in processes if process.pid is not None]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=10)


def suite_command(checkout: Path, clone: bool, tests: Sequence[str]) -> list[str]:
    if clone:
        return ["make", "test"]
    python = checkout / ".venv" / "bin" / "python"
    return [str(python if python.exists() else sys.executable), "-m", "pytest", "-q", "-p", "no:cacheprovider",
            *tests]


def fresh_clone(into: Path) -> Path:
    """A clone of this checkout's repository at its HEAD commit (committed work only)."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, check=True, capture_output=True, text=True)
    target = into / "zest-mock"
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(ROOT), str(target)], check=True)
    subprocess.run(["git", "checkout", "-q", head.stdout.strip()], cwd=target, check=True)
    return target


def run_once(number: int, command: Sequence[str], cwd: Path, timeout: float) -> Run:
    started = time.monotonic()
    # its own process group, so a run stopped on its timeout takes the mocks and partners it started with it
    process = subprocess.Popen(list(command), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
        code = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        output, code = f"{output}\nstopped after {timeout:g} s", -1
    seconds = time.monotonic() - started
    summaries = SUMMARY.findall(output)
    summary = summaries[-1][0] if summaries else output.strip().splitlines()[-1:][0] if output.strip() else "-"
    return Run(number, code, seconds, summary, [name for _, name in FAILED.findall(output)], output)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="How many times to run the suite (default 3).")
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 2,
                        help="Busy processes to keep the cores loaded (default: one per core).")
    parser.add_argument("--clone", action="store_true",
                        help="Run `make test` in a fresh clone of HEAD (it builds its own venv) instead of pytest "
                             "in this checkout.")
    parser.add_argument("--timeout", type=float, default=1800.0, help="Seconds one run may take (default 1800).")
    parser.add_argument("tests", nargs="*", help="pytest arguments (test files, -k ...); default the whole suite.")
    args = parser.parse_args(argv)
    if args.clone and args.tests:
        parser.error("--clone runs `make test`, the whole suite: give no test arguments with it")
    with tempfile.TemporaryDirectory(prefix="zest-loaded-") as scratch:
        try:
            checkout = fresh_clone(Path(scratch)) if args.clone else ROOT
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"bench broke: cannot clone {ROOT}: {exc}", file=sys.stderr)
            return 1
        command = suite_command(checkout, args.clone, args.tests)
        print(f"{' '.join(command)} in {checkout}, {args.runs} run(s), {args.hogs} CPU hog(s) on "
              f"{os.cpu_count()} core(s)", flush=True)
        runs: list[Run] = []
        with hogs(args.hogs):
            for number in range(1, args.runs + 1):
                run = run_once(number, command, checkout, args.timeout)
                runs.append(run)
                verdict = "PASS" if run.passed else f"FAIL (exit {run.returncode})"
                print(f"run {number}: {verdict} in {run.seconds:.0f} s: {run.summary}", flush=True)
                for name in run.failed:
                    print(f"    {name}", flush=True)
                if not run.passed:  # kept: the failure's evidence is the point of the exercise
                    kept = Path(tempfile.mkdtemp(prefix="zest-loaded-run-")) / f"run-{number}.log"
                    kept.write_text(run.output)
                    print(f"    output in {kept}", flush=True)
    passed = sum(run.passed for run in runs)
    print(f"passed {passed} of {len(runs)} run(s) under {args.hogs} CPU hog(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
