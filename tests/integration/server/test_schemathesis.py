"""Property-based checks of the live server against its own /openapi.json (schemathesis):
no 5xx and every response conforms to the documented schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.support.server import BinManager

EXAMPLES_PER_OPERATION = 20
# With an agent token every operation but the open ones requires a bearer token, so
# schemathesis' auth check holds (the admin token is accepted on agent endpoints too).
# Its wrong tokens would soon be throttled (429, not the 401 it checks for): throttling off,
# tested on its own in test_node_credentials.py.
SERVER_OPTIONS: dict[str, Any] = {
    "agent_token": "agent-token-for-the-fuzzer-0123456789",
    "extra_env": {"BIN_MANAGER_AUTH_FAILURE_BURST": "0", "BIN_MANAGER_ENROL_BURST": "0"},
}


def test_every_operation_conforms_to_its_schema(server: BinManager) -> None:
    # Driven through the Python API: schemathesis' lazy pytest loader does not support
    # the installed pytest, and the server only exists once the fixture has started it.
    server.publish("fuzzed", b"a release the fuzzer may find")
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures: dict[str, str] = {}
    tested = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the server's own schema is invalid: {result.err()}"
        operation = result.ok()
        tested.append(operation.label)

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            # Not positive_data_acceptance: the schema documents the bin name rule and the
            # arch list loosely (no "." / "..", case-folding, NUL), the server is stricter.
            case.call_and_validate(
                headers=server.admin_headers, excluded_checks=[positive_data_acceptance]
            )

        try:
            check()
        except Exception as exc:  # collect all operations' failures, then report them
            failures[operation.label] = f"{type(exc).__name__}: {exc}"[:3000]
    assert len(tested) >= 15
    assert not failures, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())
    assert "Traceback" not in server.service.log()
