"""The ceiling peer of ``make bench``: an ASGI app that answers every request with one fixed JSON body, served by
the mock's own uvicorn + httptools on the asyncio loop. ``python bench/bare_asgi.py PORT``."""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

BODY = b'{"spvRequestSlug":"svr_bench000001","status":"pending-review","templateId":"syndicate_secondary"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:  # drain the request body, as a real endpoint does
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", loop="asyncio",
                http="httptools", lifespan="off")
