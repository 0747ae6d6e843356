"""A typed client of the ``/_mock`` control plane: one method per endpoint, parsed JSON back, typed errors.

The CLI renders what it returns; the pytest plugin and the scenario runner drive a mock through it too::

    with ControlClient("http://localhost:8080") as mock:
        mock.reset()
        mock.advance(seconds=3600)
        mock.approve("svr_k3j9x0a2bq")

Errors::

    ControlError           anything that kept a call from succeeding
    ├── MockUnreachable    no connection (not running, wrong URL) or no answer in time
    └── ControlRefused     a non-2xx answer; carries status and the Zest error envelope

On its own it talks HTTP/1.1 over a standard-library socket (``harness.http_connection``, a kept-alive connection
per thread), so a CLI call imports no HTTP library; given an ``httpx.Client`` (``http=``, e.g. a TestClient) or an
httpx transport (``transport=``) it goes through httpx instead.
"""

from __future__ import annotations

import json as jsonlib
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

if TYPE_CHECKING:
    import httpx

    from mock_server.harness import http_connection

DEFAULT_URL = "http://localhost:8080"
JSON = dict[str, Any]
_CONNECT_TIMEOUT = 5.0
_TIMEOUT = 60.0
_ADVANCE_TIMEOUT = 600.0  # advancing waits for every due delivery to finish


class ControlError(Exception):
    """A control call did not succeed."""


class MockUnreachable(ControlError):
    def __init__(self, base_url: str, reason: str) -> None:
        super().__init__(f"cannot reach the mock at {base_url}: {reason}")
        self.base_url, self.reason = base_url, reason


class ControlRefused(ControlError):
    """A non-2xx answer: ``status`` and the envelope's ``code``, ``detail``, ``error_id``, ``validation_errors``."""

    def __init__(self, status: int, envelope: JSON) -> None:
        self.status = status
        self.envelope = envelope
        self.code = str(envelope.get("code", f"http_{status}"))
        self.detail = str(envelope.get("detail", ""))
        self.error_id: str | None = envelope.get("errorId")
        self.validation_errors: list[JSON] = list(envelope.get("validationErrors") or [])
        super().__init__(f"{status} {self.code}: {self.detail}")


class ControlClient:
    """Talks to one running mock (or, given an ``httpx.Client`` such as a TestClient, to one in-process)."""

    def __init__(self, base_url: str = DEFAULT_URL, *, timeout: float = _TIMEOUT,
                 transport: httpx.BaseTransport | None = None, http: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        if http is None and transport is not None:
            import httpx

            http = httpx.Client(base_url=self.base_url, timeout=httpx.Timeout(timeout, connect=_CONNECT_TIMEOUT),
                                transport=transport)
            self._owned = True
        else:
            self._owned = http is None
        self._http = http
        self._local = threading.local()  # this thread's connection: a connection carries one exchange at a time
        self._opened: list[http_connection.Connection] = []
        self._lock = threading.Lock()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        if self._owned and self._http is not None:
            self._http.close()

    # clock
    def clock(self) -> JSON:
        return self._call("GET", "/_mock/clock")

    def advance(self, seconds: float | None = None, *, to: str | None = None) -> JSON:
        """Advance by ``seconds`` or to the instant ``to``; returns ``{from, to, ran, count}``."""
        body: JSON = {"to": to} if to is not None else {"seconds": seconds}
        return self._call("POST", "/_mock/clock/advance", json=body, timeout=_ADVANCE_TIMEOUT)

    def set_clock(self, mode: str, scale: float | None = None) -> JSON:
        return self._call("PUT", "/_mock/clock", json=_present(mode=mode, scale=scale))

    # admin
    def approve(self, spv_request_slug: str) -> JSON:
        return self._call("POST", f"/_mock/admin/spv-requests/{_seg(spv_request_slug)}/approve")

    def reject(self, spv_request_slug: str, reason: str) -> JSON:
        return self._call("POST", f"/_mock/admin/spv-requests/{_seg(spv_request_slug)}/reject", json={"reason": reason})

    def complete(self, subscription_slug: str, emit: str | None = None) -> JSON:
        return self._call("POST", f"/_mock/admin/subscriptions/{_seg(subscription_slug)}/complete",
                          json=_present(emit=emit) or None)

    def policy(self) -> JSON:
        return self._call("GET", "/_mock/admin/policy")

    def set_policy(self, policy: JSON) -> JSON:
        return self._call("PUT", "/_mock/admin/policy", json=policy)

    # webhooks
    def events(self, client_id: str | None = None, event_type: str | None = None) -> JSON:
        return self._call("GET", "/_mock/webhooks/events", params=_present(clientId=client_id, eventType=event_type))

    def deliveries(self, client_id: str | None = None, event_id: str | None = None,
                   delivery_id: str | None = None) -> JSON:
        """Every delivery attempt, oldest first."""
        return self._call("GET", "/_mock/webhooks/deliveries",
                          params=_present(clientId=client_id, eventId=event_id, deliveryId=delivery_id))

    def dead_letter(self, client_id: str | None = None) -> JSON:
        return self._call("GET", "/_mock/webhooks/dead-letter", params=_present(clientId=client_id))

    def redeliver(self, event_id: str) -> JSON:
        return self._call("POST", f"/_mock/webhooks/events/{_seg(event_id)}/redeliver")

    def set_webhook_endpoint(self, url: str | None, *, client_id: str | None = None,
                             secret: str | None = None) -> JSON:
        return self._call("PUT", "/_mock/webhooks/endpoint",
                          json={"url": url, **_present(clientId=client_id, secret=secret)})

    # state, partners, tokens, journal
    def reset(self, keep_partners: bool = False) -> JSON:
        return self._call("POST", "/_mock/reset", json={"keepPartners": keep_partners})

    def seed(self, seed: int) -> JSON:
        return self._call("POST", "/_mock/seed", json={"seed": seed})

    def state(self) -> JSON:
        return self._call("GET", "/_mock/state")

    def register_partner(self, client_id: str, tenant_slug: str, *, public_key_pem: str | None = None,
                         provisioned: bool | None = None, webhook_url: str | None = None,
                         webhook_secret: str | None = None, issuer: str | None = None) -> JSON:
        """Register a partner; without a public key the answer carries the generated ``privateKeyPem``."""
        body = {"clientId": client_id, "tenantSlug": tenant_slug, **_present(
            publicKeyPem=public_key_pem, provisioned=provisioned, webhookUrl=webhook_url,
            webhookSecret=webhook_secret, issuer=issuer)}
        return self._call("POST", "/_mock/partners", json=body)

    def dev_credentials(self) -> JSON:
        return self._call("GET", "/_mock/dev-credentials")

    def partners(self) -> JSON:
        return self._call("GET", "/_mock/partners")

    def token(self, client_id: str) -> JSON:
        return self._call("POST", "/_mock/tokens", json={"clientId": client_id})

    def requests(self, client_id: str | None = None, operation_id: str | None = None,
                 limit: int | None = None) -> JSON:
        """The latest journaled partner API calls, oldest first."""
        return self._call("GET", "/_mock/requests",
                          params=_present(clientId=client_id, operationId=operation_id, limit=limit))

    def partner_document(self) -> JSON:
        """The partner API's OpenAPI document as the mock serves it (``/openapi.json``)."""
        return self._call("GET", "/openapi.json")

    # scenarios, faults and chaos (used by the scenario runner)
    def load_scenario(self, name: str) -> JSON:
        """Apply a library scenario; returns ``{name, seed, startedAt, clock, faults}``."""
        return self._call("POST", f"/_mock/scenarios/{_seg(name)}/load")

    def load_scenario_document(self, document: JSON) -> JSON:
        """Apply a scenario given as a document (a file of your own, parsed)."""
        return self._call("POST", "/_mock/scenarios", json=document)

    def processed_events(self, client_id: str | None = None) -> JSON:
        """The partner's reports of processed webhook events, oldest first."""
        return self._call("GET", "/_mock/expectations/processed", params=_present(clientId=client_id))

    def mark_exit(self, client_id: str | None = None) -> JSON:
        """Mark now as the instant the partner's command exited; returns ``{clientId, exitedAt, wallAt,
        attemptsBefore}``."""
        return self._call("POST", "/_mock/runs/exit", json=_present(clientId=client_id))

    def run_exit(self) -> JSON:
        return self._call("GET", "/_mock/runs/exit")

    def clear_faults(self) -> JSON:
        return self._call("DELETE", "/_mock/faults")

    def set_chaos(self, client_id: str, chaos: JSON) -> JSON:
        return self._call("PUT", f"/_mock/webhooks/chaos/{_seg(client_id)}", json=chaos)

    def _call(self, method: str, path: str, *, json: JSON | None = None, params: JSON | None = None,
              timeout: float | None = None) -> JSON:
        target = f"{path}?{urlencode(params)}" if params else path
        body = None if json is None else jsonlib.dumps(json).encode()
        if self._http is None:
            status, reason, content = self._send_socket(method, target, body, timeout or self._timeout)
        else:
            status, reason, content = self._send_httpx(method, target, body, timeout)
        if 200 <= status < 300:
            return _json_object(method, path, status, content)
        raise ControlRefused(status, _envelope(status, reason, content))

    def _send_httpx(self, method: str, target: str, body: bytes | None, timeout: float | None,
                    ) -> tuple[int, str, bytes]:
        """Through the given httpx client, with its own timeout unless the call has one."""
        import httpx

        assert self._http is not None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        extra: JSON = {"timeout": httpx.Timeout(timeout, connect=_CONNECT_TIMEOUT)} if timeout is not None else {}
        try:
            response = self._http.request(method, target, content=body, headers=headers, **extra)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise MockUnreachable(self.base_url, str(exc) or type(exc).__name__) from exc
        except httpx.TransportError as exc:
            raise MockUnreachable(self.base_url, f"{type(exc).__name__} {exc}".strip()) from exc
        return response.status_code, response.reason_phrase, response.content

    def _send_socket(self, method: str, target: str, body: bytes | None, timeout: float) -> tuple[int, str, bytes]:
        from mock_server.harness import http_connection  # here, not at the top: a CLI's --help needs none

        url = urlsplit(self.base_url)
        while True:
            conn: http_connection.Connection | None = getattr(self._local, "conn", None)
            reused = conn is not None  # a kept-alive connection the server may have closed meanwhile
            try:
                if conn is None:
                    conn = self._local.conn = http_connection.Connection(url, _CONNECT_TIMEOUT)
                    with self._lock:
                        self._opened.append(conn)
                answer = conn.exchange(method, url.path + target, body, timeout)
                if not conn.reusable:
                    self._drop(conn)
                return answer
            except (http_connection.ClosedBeforeAnswer, BrokenPipeError, ConnectionResetError) as exc:
                self._drop(conn)
                if not reused:
                    raise MockUnreachable(self.base_url, str(exc) or type(exc).__name__) from exc
            except OSError as exc:
                self._drop(conn)
                reason = "timed out" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
                raise MockUnreachable(self.base_url, reason) from exc

    def _drop(self, conn: http_connection.Connection | None) -> None:
        """Close this thread's connection after a failure or a ``Connection: close``; the next call opens a new
        one."""
        self._local.conn = None
        if conn is not None:
            conn.close()
            with self._lock:
                if conn in self._opened:
                    self._opened.remove(conn)

    # fault rules on the partner API (used by the pytest plugin's users)
    def add_fault(self, rule: JSON) -> JSON:
        """Add a rule such as ``{"match": {"operationId": "createSpvRequest"}, "action": "error", "status": 503}``;
        returns it with its ``id``."""
        return self._call("POST", "/_mock/faults", json=rule)

    def faults(self) -> JSON:
        """Fault rules, with how often each fired."""
        return self._call("GET", "/_mock/faults")

    def remove_fault(self, fault_id: int) -> JSON:
        return self._call("DELETE", f"/_mock/faults/{int(fault_id)}")


def _present(**values: Any) -> JSON:
    return {key: value for key, value in values.items() if value is not None}


def _seg(value: str) -> str:
    return quote(value, safe="")


def _json_object(method: str, path: str, status: int, content: bytes) -> JSON:
    try:
        body = jsonlib.loads(content)
    except ValueError as exc:
        raise ControlError(f"{method} {path} answered non-JSON {status}: "
                           f"{content[:200].decode(errors='replace')!r}") from exc
    return body if isinstance(body, dict) else {"items": body}


def _envelope(status: int, reason: str, content: bytes) -> JSON:
    try:
        body = jsonlib.loads(content)
    except ValueError:
        body = None
    if isinstance(body, dict) and "code" in body:
        return body
    return {"code": f"http_{status}", "detail": content[:500].decode(errors="replace") or reason}
