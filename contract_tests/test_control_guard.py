"""The control plane's Host guard in process: TestClient's own host, ``--public-url``, and foreign names.

(Over a real socket, with Origin and content-type refusals: ``reliability/test_hostile_http.py``.)
"""

from __future__ import annotations

from starlette.testclient import TestClient
from support import settings

from mock_server.app import create_app


def test_testclient_reaches_the_control_plane_by_the_host_its_scope_names(client: TestClient) -> None:
    assert client.get("/_mock/partners").status_code == 200  # Host "testserver" is the scope's server


def test_the_public_url_host_is_accepted_and_other_names_are_not() -> None:
    app = create_app(settings(public_url="https://zest-mock.ci.internal:9443"))
    with TestClient(app, base_url="http://127.0.0.1:1") as client:
        assert client.get("/_mock/partners", headers={"Host": "zest-mock.ci.internal:9443"}).status_code == 200
        refused = client.get("/_mock/partners", headers={"Host": "zest-mock.ci.internal.evil.example"})
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
        origin = {"Host": "zest-mock.ci.internal:9443", "Origin": "https://zest-mock.ci.internal:9443"}
        assert client.post("/_mock/reset", json={}, headers=origin).status_code == 200
        assert client.post("/_mock/reset", json={}, headers={**origin, "Origin": "https://zest-mock.ci.internal:9444"}
                           ).status_code == 403


def test_the_partner_api_is_not_guarded() -> None:
    with TestClient(create_app(settings()), base_url="http://api.partner.example") as client:
        assert client.get("/public/hc", headers={"Host": "anything.example"}).status_code == 200
