"""/docs and /_mock/docs in a real headless Chromium: Swagger UI from the package renders every operation offline."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest


@pytest.mark.parametrize(("page_path", "spec_path"), [("/docs", "/openapi.json"),
                                                      ("/_mock/docs", "/_mock/openapi.json")])
def test_swagger_ui_renders_every_operation_from_local_assets(page: Any, wait: Any, mock_url: str, page_path: str,
                                                              spec_path: str) -> None:
    document = httpx.get(f"{mock_url}{spec_path}").json()
    expected = sorted(f"{method.upper()} {path}" for path, ops in document["paths"].items() for method in ops)

    page.get(f"{mock_url}{page_path}")
    wait(lambda d: len(d.find_elements("css selector", ".opblock")) == len(expected),
         f"Swagger UI never rendered the {len(expected)} operations of {spec_path}")
    shown = page.execute_script(
        "return [...document.querySelectorAll('.opblock')].map(b => "
        "b.querySelector('.opblock-summary-method').textContent + ' ' + "
        "b.querySelector('.opblock-summary-path').getAttribute('data-path'))")
    assert sorted(shown) == expected
    assert not page.find_element("id", "offline").is_displayed()  # the no-JS table gives way to Swagger UI

    loaded = page.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    origin = urlsplit(mock_url).netloc
    assert loaded and all(urlsplit(url).netloc == origin for url in loaded), loaded
