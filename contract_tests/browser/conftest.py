"""Browser fixtures: Debian's headless Chromium driven by selenium, and a live mock on loopback for it to load.

The tests skip, saying why, only where the browser cannot be had (no chromium/chromedriver on PATH, or selenium not
installed); `.ci/run` installs them with apt when missing. Nothing is downloaded at test time: the driver and the
browser binaries are given to selenium explicitly, so Selenium Manager never runs.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from browsing import DESKTOP, WAIT_SECONDS
from partner_client import PartnerClient
from support import live_server, settings

from mock_server.app import create_app
from mock_server.dev_partner import dev_partner_private_key
from mock_server.presets import DEV_CLIENT_ID

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--disable-extensions", "--mute-audio")


def _binaries() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("headless browser tests need Debian's chromium and chromium-driver "
                    "(apt-get install -y chromium chromium-driver; .ci/run does it when it can)")
    return chromium, driver


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium for the session, with a fresh profile."""
    chromium, driver_path = _binaries()
    webdriver = pytest.importorskip("selenium.webdriver", reason="browser tests need selenium (the test extra)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
                 f"--window-size={DESKTOP[0]},{DESKTOP[1]}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """The session's browser at desktop width, left on a blank page afterwards."""
    browser.set_window_size(*DESKTOP)
    yield browser
    browser.get("about:blank")


@pytest.fixture
def mock_url() -> Iterator[str]:
    """A fresh mock (manual clock) served by uvicorn on a pre-bound loopback port."""
    with live_server(lambda url: create_app(settings(public_url=url))) as (url, _app):
        yield url


@pytest.fixture
def partner(mock_url: str) -> Iterator[PartnerClient]:
    """The dev partner's Partner API client, on the mock's simulated clock."""
    import httpx

    from mock_server.clock import parse_instant

    def simulated_now() -> float:
        return parse_instant(httpx.get(f"{mock_url}/_mock/clock").json()["now"]).timestamp()

    client = PartnerClient(mock_url, DEV_CLIENT_ID, dev_partner_private_key(), mock_url, now=simulated_now)
    yield client
    client.close()


@pytest.fixture
def wait(page: Any) -> Callable[..., Any]:
    """``wait(condition, message)``: WebDriverWait on the page, awaiting a condition of (driver)."""
    from selenium.webdriver.support.ui import WebDriverWait

    def until(condition: Callable[[Any], Any], message: str = "") -> Any:
        return WebDriverWait(page, WAIT_SECONDS, poll_frequency=0.05).until(condition, message)

    return until

