"""Static files shipped inside the package, served as they are under ``/_mock/assets/{bundle}/{name}``.

Three bundles: ``console`` (the admin console's page, script and styles), ``docs`` (what starts Swagger UI on
``/docs`` and ``/_mock/docs``) and ``swagger-ui`` (Swagger UI's distribution files, vendored with their licence).
Nothing is fetched from the network: every page the mock serves works offline.
"""

from __future__ import annotations

import functools
import hashlib
import re
from importlib import resources

from starlette.responses import Response

from mock_server.errors import NotFound
from mock_server.http.operations import Answer, Call, Operation, Param

BUNDLES = ("console", "docs", "swagger-ui")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".png": "image/png"}
_TEXT = "text/plain; charset=utf-8"  # LICENSE, NOTICE, *.txt


@functools.cache
def read(bundle: str, name: str) -> bytes | None:
    """The bytes of ``data/<bundle>/<name>`` inside the package, or None when there is no such file."""
    if bundle not in BUNDLES or not _NAME.fullmatch(name):
        return None
    path = resources.files("mock_server").joinpath("data", bundle, name)
    return path.read_bytes() if path.is_file() else None


def media_type(name: str) -> str:
    suffix = name[name.rfind("."):] if "." in name else ""
    return _TYPES.get(suffix, _TEXT)


def asset_response(bundle: str, name: str, if_none_match: str | None = None) -> Response:
    data = read(bundle, name)
    if data is None:
        raise NotFound(f"no asset {bundle}/{name}")
    etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if if_none_match == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=media_type(name), headers=headers)


async def get_asset(call: Call) -> Response:
    params = call.request.path_params
    return asset_response(params["bundle"], params["name"], call.request.headers.get("if-none-match"))


OPERATIONS = [
    Operation("GET", "/_mock/assets/{bundle}/{name}", "getAsset", "Mock console",
              "A file of the console or of the documentation pages", get_asset,
              {200: Answer("The file", media_type="application/octet-stream"), 404: Answer("No such file")},
              params=(Param("bundle", "path", {"type": "string", "enum": list(BUNDLES)}, True),
                      Param("name", "path", {"type": "string"}, True)),
              plane="hidden"),
]
