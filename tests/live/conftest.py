"""A real `lumio api` for the live stream tests (ASGITransport cannot stream a response)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.apiserver import ApiProcess

LOGS = Path(__file__).resolve().parent.parent / "screenshots"


@pytest.fixture(scope="session")
def api_server(database_url: str, redis_url: str) -> Iterator[ApiProcess]:
    with ApiProcess(database_url, redis_url, LOGS / "live-api.log") as server:
        yield server
