"""Property-based test of the HTTP API against its own OpenAPI (schemathesis): every route in the
schema, over SQLite and PostgreSQL holding the query tests' articles, called in-process (ASGI),
answers no 5xx, for inputs the schema allows (positive) and for inputs it does not (negative).
POST /jobs is called with the token and sends what it accepts to the test's Redis, so a good body
is a 202, never a 503 (tests/unit/test_api.py checks the 401 and 403 without it).

Bounded: EXAMPLES per route and mode, DEADLINE per call, no example database (each run starts
afresh); about 10 s per database.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode

from tests.integration.test_query import seed
from worker.api import create_app
from worker.settings import load_settings

TOKEN = "fuzz-token"
EXAMPLES = 40
DEADLINE = timedelta(seconds=5)  # per call: far above the usual milliseconds, a hang fails
ROUTES = {"GET /", "GET /healthz", "GET /articles", "GET /articles/{article_id}", "GET /stats",
          "POST /jobs"}  # fmt: skip


def fuzz(operation: Any, mode: GenerationMode) -> None:
    """Raise (with the request to reproduce it) if some generated call answers a 5xx."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=DEADLINE,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def call(case: Any) -> None:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        case.call_and_validate(headers=auth, checks=[not_a_server_error])

    call()


@pytest.mark.timeout(120)
def test_no_route_answers_5xx(database_url: str, broker_url: str) -> None:
    seed(database_url)  # the test articles, so that filters, sorting and pages meet rows
    settings = load_settings(database_url=database_url, broker_url=broker_url, api_token=TOKEN)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} == ROUTES
    failures = []
    for operation in operations:
        for mode in GenerationMode:
            try:
                fuzz(operation, mode)
            except Unsatisfiable:
                # No input outside the schema exists (a route without parameters or body).
                assert mode == GenerationMode.NEGATIVE and operation.label == "GET /healthz"
            except Exception as exc:  # a failed check, or the app raised (shrunk, with a curl)
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:2000]}")
    assert not failures, "\n\n".join(failures)
