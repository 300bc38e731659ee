"""Fixtures of the HTTP tests: the real ASGI app on each store, empty or with the example."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.http.app import create_app
from tests.helpers import AUTH, EXAMPLE_EVENTS, TOKEN


@pytest.fixture
def client(database_url):
    app = create_app(database_url, api_token=TOKEN, max_body_bytes=64_000)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def loaded(client):
    response = client.post("/events", json=EXAMPLE_EVENTS, headers=AUTH)
    assert response.status_code == 201, response.text
    assert response.json()["recorded"] == 12
    return client
