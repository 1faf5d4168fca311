"""The OpenAPI document exercised with generated input: no endpoint answers with a server error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import schemathesis
from console_app import TOKEN
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation
from wire_data import seed_wire_facts

from zenith_archive import connect, migrate
from zenith_protocol import KeySpace

MAX_EXAMPLES = 5
"""Generated calls per operation and mode: the run stays well under a minute."""
AUTH = {"Authorization": f"Bearer {TOKEN.split('=', 1)[1]}"}


@pytest.fixture
def api_schema(
    make_app: Callable[..., FastAPI], r: redis.Redis, keyspace: KeySpace, tmp_path: Path
) -> schemathesis.BaseSchema:
    """The console's schema, on Redis holding what Node writers wrote and on a migrated archive."""
    seed_wire_facts(r, keyspace, 1_767_225_600_000)
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    engine = connect(url)
    migrate(engine)
    engine.dispose()
    # The live log stream never ends: it is tested with a real client in test_api_logs.
    return schemathesis.openapi.from_asgi("/api/openapi.json", make_app(archive_url=url)).exclude(
        path="/api/logs/stream"
    )


def _no_server_error(operation: APIOperation[Any, Any, Any, Any], mode: GenerationMode) -> None:
    @given(case=operation.as_strategy(mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: schemathesis.Case[Any]) -> None:
        response = case.call(headers=AUTH)
        case.validate_response(response, checks=[not_a_server_error])

    try:
        check()
    except Unsatisfiable:
        if mode is not GenerationMode.NEGATIVE:
            raise
        # Only strings as input (a path of ids): no value is invalid, so there is no negative case.
    except Exception as exc:
        exc.add_note(f"operation: {operation.label}")
        raise


@pytest.mark.timeout(600)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_makes_a_server_error(api_schema: schemathesis.BaseSchema, mode: GenerationMode) -> None:
    operations = []
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert len(operations) > 30
    for operation in operations:
        _no_server_error(operation, mode)
