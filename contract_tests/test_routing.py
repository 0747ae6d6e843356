"""The indexed router picks, for every declared path, the route Starlette's scan in declaration order would pick."""

from __future__ import annotations

import re

from starlette.routing import Match, Route
from support import settings

from mock_server.app import create_app
from mock_server.http.routing import IndexedRouter


def test_every_path_finds_the_route_the_scan_finds() -> None:
    router = create_app(settings()).router
    assert isinstance(router, IndexedRouter) and router.index is not None
    routes = [r for r in router.routes if isinstance(r, Route)]
    assert len(routes) == len(router.routes)
    for declared in routes:
        for value in ("x", "aggregations", "1"):
            path = re.sub(r"\{[^}]+\}", value, declared.path)
            scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
            scanned = next(r for r in routes if r.matches(scope)[0] is Match.FULL)
            indexed = [r for r in router.candidates(path) if r.matches(scope)[0] is Match.FULL]
            assert indexed[:1] == [scanned], path
