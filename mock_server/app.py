"""``create_app(settings)``: the one place that wires settings, runtime, routes, error rendering and lifespan.

``create_app`` and ``partner_document`` are the server's public entry points (the harness serves mocks in process
with the first, then talks HTTP; conformance judges other servers by the second).

Start-up loads what the first answer needs and no more: the system routes (root, health check, documents), the
middleware and the engine. The partner API under ``/v1/`` and the control plane under ``/_mock`` are deferred
route groups of ``IndexedRouter``: their modules, handlers and pydantic models load with the first request under
their segment (or the first OpenAPI document), and an admin job's module with its first run.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mock_server import __version__
from mock_server.control.guard import ControlPlaneGuard
from mock_server.domain import idempotency, partners
from mock_server.errors import InternalError, InvalidRequest, NotFound, ZestError, error_response
from mock_server.http import registry
from mock_server.http.fault_injection import DroppedConnection, FaultInjectionMiddleware, QuietDrops
from mock_server.http.journaling import JournalMiddleware
from mock_server.http.operations import Operation, build_routes
from mock_server.http.routing import IndexedRouter
from mock_server.http.unknown_fields import WarningHeaderMiddleware
from mock_server.openapi import Documents, build_document
from mock_server.runtime import Runtime
from mock_server.scheduler import Job
from mock_server.settings import Settings

log = logging.getLogger("zest_mock")


def all_operations() -> list[Operation]:
    return [*registry.operations(), *control_operations()]


def control_operations() -> list[Operation]:
    """The operations under ``/_mock`` beyond the system ones: their modules load with the first ``/_mock``
    request (or the first OpenAPI document), not at start."""
    from mock_server.control import admin, clock, console, credentials, faults, journal, scenarios, state, webhooks
    from mock_server.http import assets

    return [
        *admin.OPERATIONS, *clock.OPERATIONS, *webhooks.OPERATIONS, *faults.OPERATIONS, *state.OPERATIONS,
        *journal.OPERATIONS, *scenarios.OPERATIONS, *console.OPERATIONS, *assets.OPERATIONS, *credentials.OPERATIONS,
    ]


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    rt = Runtime.build(settings)
    idempotency.clear_in_flight(rt.store)  # after a restart nothing is in flight any more
    partners.ensure_dev_partner(rt.store, rt.clock, settings.webhook_url, settings.webhook_secret)
    register_jobs(rt)
    if settings.admin_policy:
        from mock_server.domain import policy

        policy.set_policy(rt, policy.parse(settings.admin_policy))
    if settings.scenario:  # the scenario model (and YAML) load only when one is asked for
        from mock_server.scenarios.model import load_scenario
        from mock_server.scenarios.setup import apply_at_start

        apply_at_start(rt, load_scenario(settings.scenario))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        rt.start()
        try:
            yield
        finally:
            await rt.stop()

    logging.getLogger("uvicorn.error").addFilter(QuietDrops())
    app = Starlette(
        # The journal is outermost so it records what injected faults did to each call; the guard refuses /_mock
        # requests a foreign web page could have sent.
        middleware=[Middleware(JournalMiddleware), Middleware(ControlPlaneGuard),
                    Middleware(FaultInjectionMiddleware, operations=registry.api_operations),
                    Middleware(WarningHeaderMiddleware)],
        exception_handlers={ZestError: _zest_error, HTTPException: _http_error, Exception: _unexpected},
    )
    app.router = IndexedRouter(build_routes(registry.SYSTEM), lifespan=lifespan, deferred={
        "v1": lambda: _group("v1", registry.api_operations()),
        "_mock": lambda: _group("_mock", [*registry.api_operations(), *control_operations()]),
    })
    app.state.rt = rt
    app.state.openapi = Documents({
        "partner": lambda: _partner_document(all_operations(), closed_requests=settings.strict_fields),
        "control": lambda: build_document(
            all_operations(), plane="control", title="zest-mock control plane", version=__version__,
            description="Test-only endpoints under /_mock: admin actions, clock, webhooks, faults, state.",
            closed_requests=True,
        ),
    })
    return app


def _group(segment: str, operations: list[Operation]) -> list[Route]:
    """The deferred group under ``/segment``: the routes of those ``operations`` whose path starts there. What
    importing them built is kept out of the cyclic collector's passes, as ``Runtime.start`` keeps the start-up heap
    (without it, full collections scan the group's modules and models)."""
    routes = build_routes([op for op in operations if op.path.split("/")[1] == segment])
    gc.freeze()
    return routes


def partner_document() -> dict[str, Any]:
    """The document a mock serves at ``/openapi.json``, without serving one (conformance judges other servers by it)."""
    return _partner_document(all_operations())


def _partner_document(operations: list[Operation], *, closed_requests: bool = False) -> dict[str, Any]:
    """Request schemas are closed only under ``--strict-fields``; by default unknown fields are ignored."""
    from mock_server.models import InvestorCreateRow

    return build_document(operations, plane="partner", title="Zest Partner API (zest-mock)", version=__version__,
                          description="The Zest Partner API as served by zest-mock.", extra_models=[InvestorCreateRow],
                          closed_requests=closed_requests)


def register_jobs(rt: Runtime) -> None:
    """What each kind of scheduled job does."""
    rt.scheduler.register("deliver", rt.dispatcher.deliver)
    rt.scheduler.register("release_held", rt.dispatcher.release_held)
    for kind, name in (("admin_review", "run_review"), ("admin_complete", "run_completion"),
                       ("reconcile", "run_reconciler")):
        rt.scheduler.register(kind, functools.partial(_admin_job, rt, name))
    rt.scheduler.on_failure = rt.dispatcher.reschedule_orphans


async def _admin_job(rt: Runtime, name: str, job: Job) -> dict[str, object]:
    """A simulated admin's job; ``domain.admin`` (and the policy model) load with the first one."""
    from mock_server.domain import admin

    result: dict[str, object] = await getattr(admin, name)(rt, job)
    return result


async def _zest_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ZestError)
    return error_response(exc, request.app.state.rt.ids.error_id)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: ZestError
    if exc.status_code == 404:
        error = NotFound(f"no route for {request.method} {request.url.path}")
    else:
        error = InvalidRequest(str(exc.detail), status=exc.status_code, headers=exc.headers)
    return error_response(error, request.app.state.rt.ids.error_id)


async def _unexpected(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, DroppedConnection):  # a drop is a fault the test asked for, not an error
        log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    error = InternalError("unexpected server error; quote the errorId")
    return error_response(error, request.app.state.rt.ids.error_id)
