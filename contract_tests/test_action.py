"""The composite GitHub Action: ``action.yml`` runs ``scripts/zest-mock-action.sh``, whose ``start`` serves the mock in
the background, waits for health and exports ``ZEST_*`` through ``$GITHUB_ENV`` (run here with a temp file)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from mock_server.harness.assertions import fetch_token

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "zest-mock-action.sh"
pytestmark = pytest.mark.skipif(shutil.which("curl") is None or shutil.which("bash") is None,
                                reason="the action's script needs bash and curl")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_start(tmp_path: Path, **inputs: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    github_env = tmp_path / "github_env"
    github_env.touch()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "GITHUB_ENV": str(github_env), "RUNNER_TEMP": str(tmp_path), **inputs}
    done = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=180)
    exported = dict(line.split("=", 1) for line in github_env.read_text().splitlines())
    return done, exported


def test_action_yml_is_a_composite_that_installs_then_starts() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert set(action["inputs"]) == {"port", "scenario", "seed"}
    assert action["runs"]["using"] == "composite"
    runs = [step["run"] for step in action["runs"]["steps"]]
    assert runs == [f'bash "$GITHUB_ACTION_PATH/scripts/zest-mock-action.sh" {verb}' for verb in ("install", "start")]
    assert action["runs"]["steps"][1]["env"] == {"ZEST_ACTION_PORT": "${{ inputs.port }}",
                                                 "ZEST_ACTION_SCENARIO": "${{ inputs.scenario }}",
                                                 "ZEST_ACTION_SEED": "${{ inputs.seed }}"}


def test_start_serves_waits_for_health_and_exports_zest_variables(tmp_path: Path) -> None:
    port = free_port()
    done, exported = run_start(tmp_path, ZEST_ACTION_PORT=str(port), ZEST_ACTION_SCENARIO="happy_path")
    pid = int(exported.get("ZEST_MOCK_PID", "0"))
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        url = f"http://127.0.0.1:{port}"
        assert {key: exported[key] for key in ("ZEST_BASE_URL", "ZEST_MOCK_URL", "ZEST_AUDIENCE", "ZEST_CLIENT_ID",
                                               "ZEST_SCENARIO")} == {
            "ZEST_BASE_URL": url, "ZEST_MOCK_URL": url, "ZEST_AUDIENCE": url, "ZEST_CLIENT_ID": "dev-partner",
            "ZEST_SCENARIO": "happy_path"}
        assert httpx.get(f"{url}/public/hc").status_code == 200  # healthy as soon as the step returned
        assert httpx.get(f"{url}/_mock/admin/policy").json()["spvReview"]["decision"] == "approve"  # the scenario's
        partner = httpx.get(f"{url}/_mock/partners").json()["items"][0]
        assert exported["ZEST_WEBHOOK_SECRET"] == partner["webhookSecret"]
        key = Path(exported["ZEST_PRIVATE_KEY_FILE"]).read_text()
        token = fetch_token(exported["ZEST_BASE_URL"], exported["ZEST_CLIENT_ID"], key, exported["ZEST_AUDIENCE"])
        info = httpx.get(f"{url}/v1/oauth2/info", headers={"Authorization": f"Bearer {token}"})
        assert info.json()["clientId"] == "dev-partner"
    finally:
        if pid:
            os.kill(pid, signal.SIGTERM)
            _wait_gone(pid)


def test_start_fails_with_the_mock_s_own_message(tmp_path: Path) -> None:
    done, exported = run_start(tmp_path, ZEST_ACTION_PORT=str(free_port()), ZEST_ACTION_SCENARIO="no_such_scenario")
    assert done.returncode == 1
    assert "zest-mock exited before it was healthy" in done.stderr and "no_such_scenario" in done.stderr
    assert exported == {}


def _wait_gone(pid: int) -> None:
    """Reap the mock this test started (it is this process's grandchild, so poll until it is gone)."""
    import time

    deadline = time.monotonic() + 30  # a hang guard, not a verdict
    stat = Path(f"/proc/{pid}/stat")
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            if stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z":
                return  # exited; its reaper has not collected it yet
        except (ProcessLookupError, FileNotFoundError):
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
