"""A second-language partner: ``examples/node/partner.mjs``, Node.js built-ins only, against the mock on 127.0.0.1:
token exchange (Ed25519 assertion, aud = the URL it calls), a create, approval through the control plane, and a
``spv_request.completed`` webhook whose HMAC signature it checks before trusting it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from support import live_server, settings

from mock_server.app import create_app
from mock_server.dev_partner import dev_partner_private_key_file

ROOT = Path(__file__).resolve().parent.parent
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not on PATH: the Node.js partner cannot run")


def test_a_node_partner_completes_the_flow_and_refuses_forged_webhooks() -> None:
    assert NODE is not None
    with live_server(lambda _url: create_app(settings())) as (url, app):  # no public URL: aud is the URL called
        secret = app.state.rt.store.one("SELECT webhook_secret FROM partners WHERE client_id = 'dev-partner'")
        env = {**os.environ, "ZEST_BASE_URL": url, "ZEST_MOCK_URL": url, "ZEST_CLIENT_ID": "dev-partner",
               "ZEST_PRIVATE_KEY_FILE": str(dev_partner_private_key_file()), "ZEST_AUDIENCE": url,
               "ZEST_WEBHOOK_SECRET": secret["webhook_secret"]}
        # Every event also goes out once more with a forged signature, which the partner must refuse.
        httpx.put(f"{url}/_mock/webhooks/chaos/dev-partner",
                  json={"tamperShare": 1.0, "tamperKinds": ["bad_signature"]}).raise_for_status()
        done = subprocess.run([NODE, str(ROOT / "examples" / "node" / "partner.mjs")], env=env, capture_output=True,
                              text=True, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        result = json.loads(done.stdout.splitlines()[-1])
        attempts = httpx.get(f"{url}/_mock/webhooks/deliveries",
                             params={"eventId": result["completedEventId"]}).json()["items"]
        spv_request = app.state.rt.store.one("SELECT status, materialised_refs FROM spv_requests WHERE slug = ?",
                                             result["slug"])
    assert sorted(result["verified"]) == ["spv_request.completed", "spv_request.created"]  # in either order
    assert spv_request["status"] == "approved"
    assert result["vehicleSlug"] == json.loads(spv_request["materialised_refs"])["vehicleSlug"]
    genuine = [a for a in attempts if not a.get("fault")]
    forged = [a for a in attempts if a.get("fault")]
    assert [(a["outcome"], a["statusCode"]) for a in genuine] == [("delivered", 200)]
    assert forged and all(a["statusCode"] == 400 for a in forged), attempts
    assert result["refused"] >= 2  # a forged copy of each of the two events
