"""The indexed router picks, for every declared path, the route Starlette's scan in declaration order would pick."""

from __future__ import annotations

import re

from starlette.routing import Match, Route
from support import settings

from mock_server.app import create_app
from mock_server.http.routing import IndexedRouter


def test_every_path_finds_the_route_the_scan_finds() -> None:
    router = create_app(settings()).router
    assert isinstance(router, IndexedRouter)
    router.load_deferred()  # the partner API and the control plane, as their first requests would
    assert router.index is not None and not router.deferred
    routes = [r for r in router.routes if isinstance(r, Route)]
    assert len(routes) == len(router.routes)
    for declared in routes:
        for value in ("x", "aggregations", "1"):
            path = re.sub(r"\{[^}]+\}", value, declared.path)
            scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
            scanned = next(r for r in routes if r.matches(scope)[0] is Match.FULL)
            indexed = [r for r in router.candidates(path) if r.matches(scope)[0] is Match.FULL]
            assert indexed[:1] == [scanned], path


def test_the_partner_api_and_the_control_plane_are_routed_from_their_first_request() -> None:
    """Deferred groups: nothing under /v1/ or /_mock is routed (nor imported) until a request arrives there; then
    that request is answered by the route the loaded group holds, and a path outside every group is still a 404."""
    from starlette.testclient import TestClient

    app = create_app(settings())
    router = app.router
    assert isinstance(router, IndexedRouter) and set(router.deferred) == {"v1", "_mock"}
    with TestClient(app) as client:
        assert client.get("/public/hc").status_code == 200 and set(router.deferred) == {"v1", "_mock"}
        token = client.post("/_mock/tokens", json={})
        assert token.status_code == 201 and set(router.deferred) == {"v1"}
        listed = client.get("/v1/spv-requests", headers={"Authorization": f"Bearer {token.json()['accessToken']}"})
        assert listed.status_code == 200 and not router.deferred
        missing = client.get("/v2/investors")
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_once_loaded_the_router_serves_every_declared_path() -> None:
    """The deferred groups together with the start-up routes route every operation's path: none is left out."""
    from mock_server.app import all_operations

    router = create_app(settings()).router
    assert isinstance(router, IndexedRouter)
    router.load_deferred()
    assert sorted(r.path for r in router.routes if isinstance(r, Route)) == sorted({op.path for op in all_operations()})
