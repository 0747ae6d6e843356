"""Routes of the System tag: service root, health check, the served OpenAPI document and its Swagger UI page."""

from __future__ import annotations

from starlette.responses import HTMLResponse, Response

from mock_server import __version__
from mock_server.http.bodies import json_response
from mock_server.http.operations import Answer, Call, Operation

_SWAGGER_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>zest-mock: Partner API</title>
<link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "{spec}", dom_id: "#swagger-ui"});</script>
<noscript>The OpenAPI document is at <a href="{spec}">{spec}</a>.</noscript>
</body></html>"""


async def root(call: Call) -> Response:
    return json_response({"service": "zest-partner-api-mock", "version": __version__})


async def health(call: Call) -> Response:
    return json_response({"status": "ok"})


async def openapi(call: Call) -> Response:
    return json_response(call.request.app.state.openapi["partner"])


async def control_openapi(call: Call) -> Response:
    return json_response(call.request.app.state.openapi["control"])


def swagger_page(spec_path: str) -> Response:
    return HTMLResponse(_SWAGGER_PAGE.replace("{spec}", spec_path))


async def docs(call: Call) -> Response:
    return swagger_page("/openapi.json")


OPERATIONS = [
    Operation("GET", "/", "root", "System", "Service root", root, {200: Answer("Service name and version")}),
    Operation("GET", "/public/hc", "health_check", "System", "Health check", health, {200: Answer("Healthy")}),
    Operation("GET", "/openapi.json", "openapi", "System", "This OpenAPI document", openapi,
              {200: Answer("OpenAPI 3.1 document")}),
    Operation("GET", "/docs", "swagger", "System", "API documentation UI", docs,
              {200: Answer("Swagger UI page", media_type="text/html")}),
    Operation("GET", "/_mock/openapi.json", "getControlOpenapi", "Mock control", "The control plane's OpenAPI",
              control_openapi, {200: Answer("OpenAPI 3.1 document")}, plane="control"),
]
