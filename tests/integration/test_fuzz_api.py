"""Every operation of the OpenAPI schema, fuzzed by schemathesis (valid and invalid bodies,
query parameters and paths, with and without the token): never a server error. The number
of examples per operation is bounded so that CI stays short; `DEPLATFORM_FUZZ_EXAMPLES`
raises it for a longer run."""

from __future__ import annotations

import os

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import content_type_conformance, not_a_server_error

from adapters.http.app import create_app
from tests.helpers import AUTH, EXAMPLE_EVENTS, TOKEN

EXAMPLES = int(os.environ.get("DEPLATFORM_FUZZ_EXAMPLES", "60"))


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    store = f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/store.db"
    # Reads wait for a position named in X-Min-Position, fuzzed too: briefly here.
    app = create_app(store, api_token=TOKEN, read_wait=0.01)
    with TestClient(app) as client:  # runs the lifespan: the store is opened
        assert client.post("/events", json=EXAMPLE_EVENTS, headers=AUTH).status_code == 201
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


def test_no_input_makes_a_server_error(api_schema):
    """Generated cases for each operation, half of the writes with the token."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:

        @given(case=operation.as_strategy(), authorised=st.booleans())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def no_server_error(case, authorised):
            response = case.call(headers=AUTH if authorised else {})
            case.validate_response(response, checks=[not_a_server_error, content_type_conformance])
            assert "Traceback" not in response.text

        no_server_error()
