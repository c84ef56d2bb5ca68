"""Schemathesis against the live server: every operation of /api/openapi.json, generated
requests (valid and invalid, with and without a key), every check. The published schema is
the contract; `make fuzz` runs the same with 1,000 examples per operation."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from conftest import make_user
from nanostudio.api import api

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = int(os.environ.get("NANO_FUZZ_EXAMPLES", "25"))
OUT = Path(__file__).resolve().parent.parent / "var" / "fuzz-calls.json"

# Built in-process (no server needed); pytest-django has set Django up by import time.
schema = schemathesis.openapi.from_dict(api.get_openapi_schema())

# Operations whose acceptance depends on more than JSON Schema can say, each stated in the
# schema's descriptions: a schema-valid request may be refused there, but only with a 400
# naming the field (checked below instead of `positive_data_acceptance`).
BEYOND_SCHEMA = {
    "POST /api/generate": "the image's bytes, the template catalogue, prompt vs template",
    "POST /api/ocr": "the image's bytes, the languages this server reads",
    "POST /api/keys": "names are unique among your live keys",
    "PATCH /api/keys/{key_id}": "names are unique among your live keys",
    "GET /api/jobs": "the cursor must be one the server issued",
    "GET /api/usage": "at most 366 days between `from` and `to`",
    "GET /api/requests": "the cursor must be one the server issued; `ip` an IP address",
    "POST /api/webhooks": "the URL must be https on a public address, once resolved",
    "PATCH /api/webhooks/{endpoint_id}": "the URL must be https on a public address",
}


CALLS: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _count_calls():
    """Requests sent per operation, written to var/fuzz-calls.json for `make fuzz` to show."""
    yield
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"requests": sum(CALLS.values()), "by_operation": CALLS}, indent=2))


@pytest.fixture
def fresh_key(mint, settings, live_server):
    """A full-access key of an Enterprise user, new for each operation, so the fuzzer (which
    may roll, disable or revoke keys) never pulls the key it runs on from under itself."""
    settings.JOB_WAIT_S = 0  # no worker runs here: answer 202 at once instead of waiting
    settings.API_KEYLESS_RATE_PER_MINUTE = 100_000  # every request comes from one address
    # The upstream engine counts as configured, so prompts are accepted rather than 503;
    # no worker runs, so nothing is ever sent to it.
    settings.UPSTREAM_IMAGES_URL = "http://127.0.0.1:9/v1"
    user = make_user("fuzz@example.com", plan="enterprise")
    return mint(user, name="fuzz")[1]


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_published_contract(case, fresh_key, live_server):
    beyond = case.operation.label in BEYOND_SCHEMA
    CALLS[case.operation.label] += 1
    response = case.call_and_validate(
        base_url=live_server.url,
        headers={"Authorization": f"Bearer {fresh_key}"},
        excluded_checks=[positive_data_acceptance] if beyond else [],
    )
    if beyond and response.status_code == 400:
        error = response.json()["error"]
        assert error["code"] in ("VALIDATION_ERROR", "INVALID_IMAGE"), error
        assert error["details"]["fields"], error
