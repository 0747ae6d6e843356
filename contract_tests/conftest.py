"""Fixtures shared by the suite: an app on a manual clock, a TestClient inside ``with``, dev-partner headers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from receiver import Receiver, start_receiver, stop_receiver
from starlette.applications import Starlette
from starlette.testclient import TestClient
from support import bearer, settings

from mock_server.app import create_app


@pytest.fixture
def app() -> Starlette:
    return create_app(settings())


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def headers(app: Starlette) -> dict[str, str]:
    return bearer(app)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = start_receiver(Receiver())
    yield started
    stop_receiver(started)
