"""The template catalogue in memory (studio.catalogue): a submit reads no template row, and an
admin's change reaches this process's next submit and other servers' within a second."""

from __future__ import annotations

import time

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Plan
from conftest import make_user, sample_b64, worker_env
from studio import catalogue
from studio.models import Job, Template
from tests.processes import free_port, start_web, stop_process

SEPIA = {"image": sample_b64(), "template": "Sepia", "templateType": "filters"}
ASYNC = {"Prefer": "respond-async"}


def submit(api, secret: str, body: dict | None = None):
    return api("post", "/api/generate", key=secret, json=body or SEPIA, headers=ASYNC)


def test_a_warm_submit_reads_no_template_row(api, alice_key):
    _, secret = alice_key
    assert submit(api, secret).status_code == 202  # the first one reads the catalogue
    with CaptureQueriesContext(connection) as queries:
        answer = submit(api, secret, SEPIA | {"template": "  sepia "})  # any case, trimmed
    assert answer.status_code == 202, answer.content
    assert answer.json()["data"]["template"] == {"name": "Sepia", "type": "filters"}
    sql = [query["sql"] for query in queries.captured_queries]
    read = [s for s in sql if 'FROM "studio_template' in s or 'FROM "billing_plan"' in s]
    assert not read, read


def test_an_admins_change_applies_to_the_next_submit(api, db, mint):
    _, secret = mint(make_user("admin-change@example.com", plan="enterprise"))
    assert submit(api, secret).status_code == 202
    sepia = Template.objects.get(name="Sepia", type="filters")

    sepia.enabled = False
    sepia.save()
    refused = submit(api, secret)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "VALIDATION_ERROR"

    sepia.enabled = True
    sepia.save()
    assert submit(api, secret).status_code == 202

    sepia.plans.set([Plan.objects.get(slug="pro")])  # alice is on Free
    refused = submit(api, secret)
    assert refused.status_code == 403
    assert refused.json()["error"]["details"] == {"feature": "template:filters"}
    sepia.plans.clear()
    assert submit(api, secret).status_code == 202

    sepia.credit_cost = 3
    sepia.save()
    assert submit(api, secret).json()["data"]["credits"] == 3

    sepia.delete()
    assert submit(api, secret).status_code == 400


@pytest.mark.django_db(transaction=True)
def test_a_change_reaches_another_servers_processes(mint):
    """Two gunicorn worker processes keep their own copies: a change made here (as the admin
    on another machine would) reaches both within catalogue.CHECK_EVERY_S."""
    user = make_user("catalogue@example.com", plan="enterprise")
    _, secret = mint(user)
    port = free_port()
    web = start_web(worker_env(), port, "--workers", "2")
    url = f"http://127.0.0.1:{port}/api/generate"
    headers = {"Authorization": f"Bearer {secret}", "X-Forwarded-Proto": "https", **ASYNC}

    def statuses() -> set[int]:  # a connection each, so both processes answer some
        Job.objects.filter(status="queued").update(status="cancelled")  # under the job cap
        return {
            requests.post(url, json=SEPIA, headers=headers, timeout=10).status_code
            for _ in range(8)
        }

    def settles_to(status: int) -> float:
        changed = time.monotonic()
        while statuses() != {status}:
            assert time.monotonic() - changed < catalogue.CHECK_EVERY_S + 3, "still stale"
            time.sleep(0.1)
        return time.monotonic() - changed

    try:
        assert statuses() == {202}
        sepia = Template.objects.get(name="Sepia", type="filters")
        sepia.enabled = False
        sepia.save()
        settles_to(400)
        sepia.enabled = True
        sepia.save()
        settles_to(202)
    finally:
        stop_process(web)
