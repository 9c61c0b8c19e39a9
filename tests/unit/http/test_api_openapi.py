"""The served OpenAPI document is accurate: a property-based run of it (schemathesis) against
the in-process API finds no 5xx and no answer that breaks the document (no Ray)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from api_support import AUTH, KEY, build_api

from openapi_checks import run_property_checks

pytestmark = pytest.mark.unit

#: A generated x-mmserve-timeout-s of 1e-300 s rightly ends in 504 (the caller's own
#: deadline), which the property run would count as a server error; the header's checks
#: (400 for bad values, 504 naming the step) are tested on their own.
ROOMY = {**AUTH, "x-mmserve-timeout-s": "60"}

#: Small and derandomized: the same examples every run, a few seconds in all.
EXAMPLES = 15


@pytest.fixture(scope="module")
def schema() -> Iterator[schemathesis.BaseSchema]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MMSERVE_UNIT_KEY", KEY)
        app = build_api({"api_key_env": "MMSERVE_UNIT_KEY", "limits": {"max_body_bytes": 1 << 20}})
        yield schemathesis.openapi.from_asgi("/openapi.json", app, headers=AUTH)


def test_documents_every_v1_endpoint_and_both_run_bodies(schema: schemathesis.BaseSchema) -> None:
    raw = schema.raw_schema
    assert {
        "/v1/health",
        "/v1/workflows",
        "/v1/workflows/{name}/run",
        "/v1/collections",
        "/v1/collections/{name}/items",
        "/v1/collections/{name}/search",
        "/v1/plugins",
    } <= set(raw["paths"])
    run = raw["paths"]["/v1/workflows/{name}/run"]["post"]
    assert set(run["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert {"401", "413", "415", "422", "503", "504"} <= set(run["responses"])


def test_property_based_run_finds_no_5xx_and_no_schema_breaks(
    schema: schemathesis.BaseSchema,
) -> None:
    failures = run_property_checks(schema, examples=EXAMPLES, headers=ROOMY)
    assert not failures, "\n\n".join(failures)
