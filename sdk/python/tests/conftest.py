"""Fixtures. Tests marked by the `live` fixture run against a Flywheel server named by the environment:

    FLYWHEEL_URL         the server (tests/integration/sdk.test.ts starts one in process)
    FLYWHEEL_TOKEN       an admin token
    FLYWHEEL_READ_TOKEN  a read-only token (the permission tests skip without it)
    FLYWHEEL_WRITE_TOKEN a write token (optional: shows that moving an alias needs admin)

and skip without them; the rest need no server.
"""
from __future__ import annotations

import os
import uuid
from typing import Iterator

import pytest

import flywheel


class Live:
    def __init__(self, url: str, token: str, read_token: "str | None", write_token: "str | None") -> None:
        self.url = url
        self.token = token
        self.read_token = read_token
        self.write_token = write_token
        # Names unique to this session, so runs of the suite never meet each other's experiments or models.
        self.prefix = os.environ.get("FLYWHEEL_TEST_PREFIX") or f"sdk-{uuid.uuid4().hex[:8]}"

    def name(self, what: str) -> str:
        return f"{self.prefix}-{what}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def live() -> Live:
    url, token = os.environ.get("FLYWHEEL_URL"), os.environ.get("FLYWHEEL_TOKEN")
    if not url or not token:
        pytest.skip("needs a live server: set FLYWHEEL_URL and FLYWHEEL_TOKEN (an admin token); tests/integration/sdk.test.ts does")
    return Live(url, token, os.environ.get("FLYWHEEL_READ_TOKEN") or None, os.environ.get("FLYWHEEL_WRITE_TOKEN") or None)


@pytest.fixture
def fw(live: Live) -> Iterator[flywheel.Client]:
    """The module-level API's default client, pointed at the live server; no run is left active afterwards."""
    client = flywheel.configure(live.url, live.token)
    yield client
    while client.active_run() is not None:
        client.end_run("KILLED")


@pytest.fixture
def read_client(live: Live) -> Iterator[flywheel.Client]:
    if not live.read_token:
        pytest.skip("needs FLYWHEEL_READ_TOKEN (a read-scope token)")
    with flywheel.Client(live.url, live.read_token) as client:
        yield client
