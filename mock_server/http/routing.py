"""The router of the app: Starlette's, with the route of a request found by a dict lookup instead of a scan.

Starlette tries each route's regex in turn (19 of them before ``GET /v1/spv-requests/{slug}``). Every route the
operations build takes any method and has path parameters that match within one segment, so a route can only match
a path with as many segments as its own and the same literal first two segments: the routes are indexed by that
key, in their order, and only those few are tried, so the first route that matches is the one Starlette would pick.
A path no indexed route matches (a 404, a trailing slash to redirect), and any request under a ``root_path``, goes
through Starlette's scan unchanged.

Routes can also be ``deferred``: a group of routes under one first path segment (``v1``: the partner API,
``_mock``: the control plane) is built by its loader on the first request under that segment, and appended then,
so the modules behind it are imported on first use, not at start. The groups are disjoint by that segment, so
appending them later picks the same route as declaring them at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Lifespan, Receive, Scope, Send

_Key = tuple[int, str, str]


def _key(path: str) -> _Key:
    segments = path.split("/")
    return len(segments), segments[1] if len(segments) > 1 else "", segments[2] if len(segments) > 2 else ""


def _indexable(route: BaseRoute) -> bool:
    """A route that takes every method, whose first two segments are literal and whose parameters stay within
    their segment (no ``:path`` convertor)."""
    if not isinstance(route, Route) or route.methods is not None or ":path}" in route.path:
        return False
    return "{" not in "/".join(route.path.split("/")[:3])


class IndexedRouter(Router):
    def __init__(self, routes: Sequence[BaseRoute], lifespan: Lifespan[Any],
                 deferred: Mapping[str, Callable[[], Sequence[BaseRoute]]] | None = None) -> None:
        super().__init__([], lifespan=lifespan)
        self.index: dict[_Key, list[Route]] | None = {}
        self.deferred = dict(deferred or {})
        self._add(routes)

    def load_deferred(self) -> None:
        """Build every deferred group now (what a request under its segment would do)."""
        for segment in list(self.deferred):
            self._add(self.deferred.pop(segment)())

    def _add(self, routes: Sequence[BaseRoute]) -> None:
        self.routes.extend(routes)
        for route in routes:
            if self.index is None or not _indexable(route):
                self.index = None  # a route the key cannot describe: Starlette's scan for every request
                return
            assert isinstance(route, Route)
            self.index.setdefault(_key(route.path), []).append(route)

    def candidates(self, path: str) -> list[Route]:
        """The only routes that can match ``path``, in declaration order."""
        assert self.index is not None
        return self.index.get(_key(path), [])

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.deferred and scope["type"] == "http":
            if scope.get("root_path"):  # the path's first segment is the root path's: load them all
                self.load_deferred()
            elif (load := self.deferred.pop(_key(scope["path"])[1], None)) is not None:
                self._add(load())
        if scope["type"] == "http" and self.index is not None and not scope.get("root_path"):
            for route in self.candidates(scope["path"]):
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.setdefault("router", self)
                    scope["route"] = route
                    scope.update(child_scope)
                    await route.handle(scope, receive, send)
                    return
        await super().app(scope, receive, send)
