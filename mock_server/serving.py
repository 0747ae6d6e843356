"""How the mock is put on uvicorn: the options `zest-mock serve` and the in-process servers share, and the one
threaded server (``app_in_thread``) that the pytest plugin and the scenario runner start a mock on (``in_thread``)
and the project's tests serve their apps on.

Every server gets the connection limits of ``http/limits.py`` (head size, header count, idle timeouts, framing), the
fast httptools parser on the plain asyncio loop (uvloop showed write tails here), no access log, no WebSocket
library, and an event loop whose clock is the real monotonic clock however the process's ``time`` module is patched:
a partner's test that freezes time with freezegun (``zest_clock``) freezes the partner's clock, never the mock's
timers. (freezegun's ``real_asyncio`` patches the loop class only after ``time.monotonic``, so a loop running in
another thread can read the frozen value in between, schedule its next tick decades ahead and never stop.)
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from starlette.types import ASGIApp

from mock_server.settings import Settings

App = TypeVar("App", bound=ASGIApp)
START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 10.0


class _Loop(asyncio.SelectorEventLoop):
    """The asyncio loop, timed by the monotonic clock as it was when this module was imported."""

    def time(self, _monotonic: Callable[[], float] = time.monotonic) -> float:  # a default, where no patch reaches
        return _monotonic()


def new_loop() -> asyncio.AbstractEventLoop:
    """uvicorn's loop factory (``loop="mock_server.serving:new_loop"``)."""
    return _Loop()


def uvicorn_options(settings: Settings | None) -> dict[str, Any]:
    """The ``uvicorn.Config`` options every server of the mock uses; with ``settings`` None (an app that is not a
    mock, such as a test's broken server) only the loop and the logs, not the mock's connection limits."""
    options: dict[str, Any] = {"loop": f"{__name__}:new_loop", "log_level": "warning", "access_log": False}
    if settings is not None:
        from mock_server.http.limits import protocol_class

        # No route is a WebSocket: no WebSocket library is loaded (an Upgrade: websocket is answered as plain HTTP).
        options |= {"http": protocol_class(settings), "ws": "none"}
    return options


@contextlib.contextmanager
def in_thread(port: int = 0, *, name: str = "zest-mock", **settings: Any) -> Iterator[tuple[str, Settings]]:
    """Serve a mock on ``127.0.0.1:port`` (0: a free port) in a daemon thread of this process; yields its base URL
    and settings (``settings`` are further ``Settings`` fields), and stops it on exit."""
    from mock_server.app import create_app

    def mock_at(url: str) -> tuple[ASGIApp, Settings]:
        config = Settings(host="127.0.0.1", port=int(url.rsplit(":", 1)[1]), public_url=url, **settings)
        return create_app(config), config

    with app_in_thread(mock_at, port, name=name) as (url, _, config):
        assert config is not None
        yield url, config


@contextlib.contextmanager
def app_in_thread(make: Callable[[str], tuple[App, Settings | None]], port: int = 0, *,
                  name: str = "zest-mock") -> Iterator[tuple[str, App, Settings | None]]:
    """Serve the app of ``make(base_url)`` in a daemon thread on ``127.0.0.1:port``; yields the base URL and what
    ``make`` returned. With the app's ``Settings`` beside it the server has the mock's options
    (``uvicorn_options``), with None only its loop and logs."""
    import uvicorn

    # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only then; without it every
    # request on a kept-alive connection waits ~40 ms for a delayed ACK (Nagle).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        app, config = make(url)
        server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_config=None, timeout_graceful_shutdown=2,
                                               **uvicorn_options(config)))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while not server.started and thread.is_alive() and time.monotonic() < deadline:
                thread.join(0.005)  # returns early if the server thread dies
            if not server.started:
                raise RuntimeError("the mock server did not start (see the captured log)")
            yield url, app, config
        finally:
            server.should_exit = True
            thread.join(timeout=STOP_TIMEOUT_SECONDS)
