"""The control-plane guard: a pure ASGI middleware that lets a local test, script or same-origin page drive
``/_mock``, and no other web page.

A page on another site can reach a mock on loopback in two ways; both are refused before any route runs:

- DNS rebinding: a page on ``evil.example`` points its own name at 127.0.0.1 and can then read ``/_mock/partners``
  (webhook secrets) or mint tokens, with ``Host: evil.example``. So every ``/_mock`` request must name the mock in
  ``Host``: a loopback name (``localhost``, 127.0.0.0/8, ``[::1]``), the address the connection arrived on (the IP
  a client used when the mock is bound beyond loopback; ``testserver`` under Starlette's TestClient, whose scope
  says that is the server), or the host of ``--public-url``. Else 403 ``forbidden`` (400 without any ``Host``).
- Cross-site "simple" requests, which browsers send without asking: a state-changing ``/_mock`` request (any
  method but GET, HEAD and OPTIONS) is refused with 403 when it carries an ``Origin`` other than the mock's own
  (the scheme and ``Host`` it was sent to, or ``--public-url``), or a body of a CORS-simple type (``text/plain``,
  ``application/x-www-form-urlencoded``, ``multipart/form-data``); control-plane bodies are JSON.

curl, scripts, the CLI, the pytest plugin, the scenario runner and TestClient send no ``Origin`` and JSON or no
body, so they pass unchanged; so does the console page, whose ``fetch()`` calls are same-origin JSON.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from mock_server.errors import Forbidden, InvalidRequest, ZestError, error_response
from mock_server.runtime import Runtime

PREFIX = "/_mock"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SIMPLE_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_loopback(host: str) -> bool:
    """Whether a host name or address (IPv6 with or without brackets) can only mean this machine."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ControlPlaneGuard:
    """Refuses ``/_mock`` requests a foreign web page could have made (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == PREFIX or path.startswith(PREFIX + "/"):
            rt: Runtime = scope["app"].state.rt
            refusal = _refusal(scope, rt.settings.public_url)
            if refusal is not None:
                await error_response(refusal, rt.ids.error_id)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _refusal(scope: Scope, public_url: str | None) -> ZestError | None:
    # ASGI header names are lower case; the first of repeated headers counts, as Starlette's Headers.get has it
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in reversed(scope["headers"])}
    host = headers.get("host")
    if not host:
        return InvalidRequest("control-plane requests must carry a Host header")
    hostname = _hostname(host)
    public = urlsplit(public_url) if public_url else None
    server = scope.get("server")
    if not (is_loopback(hostname) or (server and hostname == str(server[0]).lower())
            or (public is not None and hostname == (public.hostname or ""))):
        return Forbidden(f"control plane refused for Host {host!r}: it answers only requests addressed to it by a "
                         "loopback name (localhost, 127.0.0.1, [::1]), by the address it was reached at, or by "
                         "--public-url (a foreign Host is how a DNS-rebinding web page would reach it)")
    if scope["method"] in SAFE_METHODS:
        return None
    origin = headers.get("origin")
    own = {_origin(f"{scope.get('scheme', 'http')}://{host}")}
    if public is not None:
        own.add(_origin(public_url or ""))
    if origin is not None and _origin(origin) not in own:
        return Forbidden(f"control plane refused a {scope['method']} from Origin {origin!r}: only the mock's own "
                         "pages and clients that send no Origin (curl, scripts, tests) may change its state")
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type in SIMPLE_TYPES:
        return Forbidden(f"control plane refused a {scope['method']} with Content-Type {media_type}: a cross-site "
                         "form can send that without asking; send application/json (or no body)")
    return None


def _hostname(host: str) -> str:
    """``Host`` without its port: ``[::1]:8080`` -> ``::1``, ``localhost:8080`` -> ``localhost``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    name, _, port = host.rpartition(":")
    return name if name and port.isdigit() else host


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in; nonsense compares equal to nothing real."""
    try:
        parts = urlsplit(url.strip().lower())
        return parts.scheme, parts.hostname or "", parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return "", "", None
