"""The property-based OpenAPI run shared by the unit tier (in-process API) and the serve tier
(a real Serve app); imported by name: tests/ is on sys.path through its conftest."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance


def run_property_checks(
    schema: schemathesis.BaseSchema, *, examples: int, headers: dict[str, str]
) -> list[str]:
    """Positive and negative cases for every operation; the failures found, by operation."""
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        cases = st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )

        # Images are strings the schema cannot describe fully (they must decode as images),
        # so schema-valid bodies may be refused with 422: that check does not apply.
        @given(case=cases)
        @settings(
            max_examples=examples,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        try:
            check()
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    return failures
