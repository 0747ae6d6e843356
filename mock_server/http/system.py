"""Routes of the System tag: service root, health check, the served OpenAPI document and its Swagger UI page."""

from __future__ import annotations

from html import escape
from typing import Any

from starlette.responses import HTMLResponse, Response

from mock_server import __version__
from mock_server.http.bodies import json_response
from mock_server.http.operations import Answer, Call, Operation

# Swagger UI is served from files inside the package (offline too); the operation table under it is for browsers
# without JavaScript, and docs/swagger-init.js hides it once Swagger UI has rendered.
_SWAGGER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="/_mock/assets/swagger-ui/swagger-ui.css"></head>
<body><div id="swagger-ui" data-spec="{spec}"></div>
<section id="offline"><h1>{title}</h1><p>OpenAPI document: <a href="{spec}">{spec}</a></p>
<table><tr><th>method</th><th>path</th><th>operationId</th><th>summary</th></tr>{rows}</table></section>
<script src="/_mock/assets/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/_mock/assets/docs/swagger-init.js"></script>
</body></html>"""


async def root(call: Call) -> Response:
    return json_response({"service": "zest-partner-api-mock", "version": __version__,
                          "links": {"docs": "/docs", "controlDocs": "/_mock/docs", "console": "/_mock/console"}})


async def health(call: Call) -> Response:
    return json_response({"status": "ok"})


async def openapi(call: Call) -> Response:
    return json_response(call.request.app.state.openapi["partner"])


async def control_openapi(call: Call) -> Response:
    return json_response(call.request.app.state.openapi["control"])


def swagger_page(document: dict[str, Any], spec_path: str) -> Response:
    rows = "".join(
        f"<tr><td>{method.upper()}</td><td>{escape(path)}</td><td>{escape(op['operationId'])}</td>"
        f"<td>{escape(op.get('summary', ''))}</td></tr>"
        for path, ops in document["paths"].items() for method, op in ops.items()
    )
    page = _SWAGGER_PAGE.replace("{spec}", spec_path).replace("{rows}", rows)
    return HTMLResponse(page.replace("{title}", escape(document["info"]["title"])))


async def docs(call: Call) -> Response:
    return swagger_page(call.request.app.state.openapi["partner"], "/openapi.json")


async def control_docs(call: Call) -> Response:
    return swagger_page(call.request.app.state.openapi["control"], "/_mock/openapi.json")


OPERATIONS = [
    Operation("GET", "/", "root", "System", "Service root", root, {200: Answer("Service name and version")}),
    Operation("GET", "/public/hc", "health_check", "System", "Health check", health, {200: Answer("Healthy")}),
    Operation("GET", "/openapi.json", "openapi", "System", "This OpenAPI document", openapi,
              {200: Answer("OpenAPI 3.1 document")}),
    Operation("GET", "/docs", "swagger", "System", "API documentation UI", docs,
              {200: Answer("Swagger UI page", media_type="text/html")}),
    Operation("GET", "/_mock/openapi.json", "getControlOpenapi", "Mock control", "The control plane's OpenAPI",
              control_openapi, {200: Answer("OpenAPI 3.1 document")}, plane="control"),
    Operation("GET", "/_mock/docs", "getControlDocs", "Mock control", "The control plane's documentation UI",
              control_docs, {200: Answer("Swagger UI page", media_type="text/html")}, plane="control"),
]
