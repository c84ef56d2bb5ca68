from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client

from billing.models import LedgerEntry
from conftest import make_user, sample_b64
from studio.models import Job

ASYNC = {"Prefer": "respond-async"}


def _body():
    return {"image": sample_b64(), "template": "Sepia", "templateType": "filters"}


def test_same_key_and_body_ten_times_is_one_job_and_one_debit(api, alice, alice_key):
    _, secret = alice_key
    body = _body()
    responses = [
        api(
            "post",
            "/api/generate",
            key=secret,
            json=body,
            headers={**ASYNC, "Idempotency-Key": "order-7"},
        )
        for _ in range(10)
    ]
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["data"]["id"] for r in responses}) == 1
    assert "Idempotent-Replayed" not in responses[0]
    assert all(r["Idempotent-Replayed"] == "true" for r in responses[1:])
    assert Job.objects.filter(user=alice).count() == 1
    assert LedgerEntry.objects.filter(user=alice, kind="debit").count() == 1


def test_same_key_other_body_is_422(api, alice, alice_key):
    _, secret = alice_key
    api(
        "post",
        "/api/generate",
        key=secret,
        json=_body(),
        headers={**ASYNC, "Idempotency-Key": "k1"},
    )
    other = {**_body(), "template": "Grayscale"}
    response = api(
        "post", "/api/generate", key=secret, json=other, headers={**ASYNC, "Idempotency-Key": "k1"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert Job.objects.filter(user=alice).count() == 1


def test_keys_are_per_user_and_a_rejected_request_frees_the_key(api, alice_key, bob, charlie, mint):
    _, secret = alice_key
    _, bob_secret = mint(bob)
    api(
        "post",
        "/api/generate",
        key=secret,
        json=_body(),
        headers={**ASYNC, "Idempotency-Key": "shared"},
    )
    response = api(
        "post",
        "/api/generate",
        key=bob_secret,
        json=_body(),
        headers={**ASYNC, "Idempotency-Key": "shared"},
    )
    assert response.status_code == 202
    _, charlie_secret = mint(charlie)
    assert (
        api(
            "post",
            "/api/generate",
            key=charlie_secret,
            json=_body(),
            headers={**ASYNC, "Idempotency-Key": "retry-me"},
        ).status_code
        == 402
    )
    from billing.ledger import grant_topup

    grant_topup(charlie, 5, "test")
    assert (
        api(
            "post",
            "/api/generate",
            key=charlie_secret,
            json=_body(),
            headers={**ASYNC, "Idempotency-Key": "retry-me"},
        ).status_code
        == 202
    )


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_requests_with_one_key_make_one_job(mint):
    user = make_user("idem@example.com", plan="enterprise")
    _, secret = mint(user)
    body = json.dumps(_body())

    def submit(_):
        try:
            response = Client().post(
                "/api/generate",
                data=body,
                content_type="application/json",
                headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": "burst", **ASYNC},
            )
            return response.status_code, response.json()
        finally:
            connection.close()

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(submit, range(20)))
    assert Job.objects.filter(user=user).count() == 1
    job_id = str(Job.objects.get(user=user).pk)
    for status, body_json in results:
        assert status in (202, 409), body_json
        if status == 202:
            assert body_json["data"]["id"] == job_id
        else:
            assert body_json["error"]["code"] == "IDEMPOTENCY_KEY_IN_USE"
    assert LedgerEntry.objects.filter(user=user, kind="debit").count() == 1
