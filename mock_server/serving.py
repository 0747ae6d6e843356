"""How the mock is put on uvicorn: the options `zest-mock serve` and the in-process servers share, and the one
threaded server the pytest plugin and the scenario runner start.

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
from typing import Any

from mock_server.settings import Settings

START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 10.0


class _Loop(asyncio.SelectorEventLoop):
    """The asyncio loop, timed by the monotonic clock as it was when this module was imported."""

    def time(self, _monotonic: Callable[[], float] = time.monotonic) -> float:  # a default, where no patch reaches
        return _monotonic()


def new_loop() -> asyncio.AbstractEventLoop:
    """uvicorn's loop factory (``loop="mock_server.serving:new_loop"``)."""
    return _Loop()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The ``uvicorn.Config`` options every server of the mock uses."""
    from mock_server.http.limits import protocol_class

    # No route is a WebSocket: no WebSocket library is loaded (an Upgrade: websocket request is answered as plain HTTP).
    return {"loop": f"{__name__}:new_loop", "http": protocol_class(settings), "ws": "none", "log_level": "warning",
            "access_log": False}


@contextlib.contextmanager
def in_thread(port: int = 0, *, name: str = "zest-mock", **settings: Any) -> Iterator[tuple[str, Settings]]:
    """Serve a mock on ``127.0.0.1:port`` (0: a free port) in a daemon thread of this process; yields its base URL
    and settings (``settings`` are further ``Settings`` fields), and stops it on exit."""
    import uvicorn

    from mock_server.app import create_app

    # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only then; without it every
    # request on a kept-alive connection waits ~40 ms for a delayed ACK (Nagle).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        bound = sock.getsockname()[1]
        url = f"http://127.0.0.1:{bound}"
        config = Settings(host="127.0.0.1", port=bound, public_url=url, **settings)
        server = uvicorn.Server(uvicorn.Config(create_app(config), lifespan="on", log_config=None,
                                               timeout_graceful_shutdown=2, **uvicorn_options(config)))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while not server.started and thread.is_alive() and time.monotonic() < deadline:
                thread.join(0.005)  # returns early if the server thread dies
            if not server.started:
                raise RuntimeError("the mock server did not start (see the captured log)")
            yield url, config
        finally:
            server.should_exit = True
            thread.join(timeout=STOP_TIMEOUT_SECONDS)
