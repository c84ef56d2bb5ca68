"""POST /api/generate and the jobs it creates, without a worker (inputs, plans, credits)."""

from __future__ import annotations

import base64
import io
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from billing.models import CreditBalance, LedgerEntry, Plan
from conftest import make_user, race_submits, sample_b64, sample_png
from studio import actions
from studio.engines import providers
from studio.models import Job, JobInput, Template
from studio.tasks import claim, run_job

ASYNC = {"Prefer": "respond-async"}


def balance(user) -> int:
    return CreditBalance.objects.get(user=user).total


def nothing_happened(user, before: int) -> None:
    assert Job.objects.filter(user=user).count() == 0
    assert balance(user) == before
    assert LedgerEntry.objects.filter(user=user).aggregate(total=Sum("amount"))["total"] == before


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _bomb() -> str:
    image = Image.new("1", (20_000, 20_000))  # 400 Mpx, a few KB as PNG
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return _b64(buffer.getvalue())


BAD_IMAGES = {
    "not base64": "this is not base64!!",
    "svg": _b64(
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
    ),
    "pdf": _b64(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF"),
    "text renamed .png": _b64(b"hello, I am a text file named photo.png"),
    "bmp (not allowed)": None,
}


@pytest.mark.parametrize("case", [c for c in BAD_IMAGES if BAD_IMAGES[c]] + ["bomb", "bmp"])
def test_bad_images_are_refused_and_cost_nothing(api, alice, alice_key, case):
    _, secret = alice_key
    image: str | None
    if case == "bomb":
        image = _bomb()
    elif case == "bmp":
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buffer, format="BMP")
        image = _b64(buffer.getvalue())
    else:
        image = BAD_IMAGES[case]
    response = api(
        "post",
        "/api/generate",
        key=secret,
        json={"image": image, "template": "Grayscale", "templateType": "filters"},
        headers=ASYNC,
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_IMAGE"
    nothing_happened(alice, 50)


def test_a_data_url_is_accepted(api, alice, alice_key):
    _, secret = alice_key
    response = api(
        "post",
        "/api/generate",
        key=secret,
        json={
            "image": "data:image/png;base64," + sample_b64(),
            "template": "grayscale",
            "templateType": "filters",
        },
        headers=ASYNC,
    )
    assert response.status_code == 202
    assert response["Location"] == f"/api/jobs/{response.json()['data']['id']}"
    assert response["X-Credits-Remaining"] == "49"  # after this job's charge
    assert balance(alice) == 49


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"image": "x", "template": "Nope", "templateType": "filters"}, "template"),
        ({"image": "x", "template": "Grayscale", "templateType": "nope"}, "template"),
        ({"template": "Grayscale", "templateType": "filters"}, "body"),
        (
            {"image": "x", "template": "Grayscale", "templateType": "filters", "prompt": "cat"},
            "body",
        ),
    ],
)
def test_unknown_templates_and_bad_fields(api, alice, alice_key, body, field):
    _, secret = alice_key
    response = api("post", "/api/generate", key=secret, json=body, headers=ASYNC)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert field in error["details"]["fields"]
    nothing_happened(alice, 50)


def test_body_over_the_limit(api, alice, alice_key, settings):
    _, secret = alice_key
    settings.API_MAX_BODY_BYTES = 50_000
    response = api(
        "post",
        "/api/generate",
        key=secret,
        json={"image": "A" * 60_000, "template": "Grayscale", "templateType": "filters"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    nothing_happened(alice, 50)


def test_the_expressions_example_without_an_upstream_is_503_and_free(
    api, alice, alice_key, settings
):
    settings.UPSTREAM_IMAGES_URL = settings.GEMINI_API_KEY = settings.OPENAI_API_KEY = ""
    _, secret = alice_key
    response = api(
        "post",
        "/api/generate",
        key=secret,
        json={"image": sample_b64(), "template": "Joyful Laugh", "templateType": "expressions"},
    )
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "ENGINE_UNAVAILABLE"
    assert "Nothing was charged" in error["message"]
    nothing_happened(alice, 50)
    response = api("post", "/api/generate", key=secret, json={"prompt": "a cute cat"})
    assert response.status_code == 503
    nothing_happened(alice, 50)


def test_a_template_the_plan_lacks_is_403(api, alice, alice_key):
    template = Template.objects.get(name="Grayscale")
    template.plans.set([Plan.objects.get(slug="pro")])
    _, secret = alice_key
    response = api(
        "post",
        "/api/generate",
        key=secret,
        json={"image": sample_b64(), "template": "Grayscale", "templateType": "filters"},
    )
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "INSUFFICIENT_PERMISSIONS"
    assert error["message"] == "Your plan does not include this feature."
    nothing_happened(alice, 50)


def test_no_credits_is_402_with_details(api, charlie, mint):
    _, secret = mint(charlie)
    response = api(
        "post",
        "/api/generate",
        key=secret,
        json={"image": sample_b64(), "template": "Grayscale", "templateType": "filters"},
    )
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "INSUFFICIENT_CREDITS"
    assert error["details"]["required"] == 1
    assert error["details"]["remaining"] == 0
    assert error["details"]["resets_at"] == CreditBalance.objects.get(
        user=charlie
    ).period_end.isoformat().replace("+00:00", "Z")
    assert Job.objects.filter(user=charlie).count() == 0


def test_the_concurrent_job_cap(api, alice, alice_key):
    _, secret = alice_key
    body = {"image": sample_b64(), "template": "Grayscale", "templateType": "filters"}
    for _ in range(2):
        assert api("post", "/api/generate", key=secret, json=body, headers=ASYNC).status_code == 202
    response = api("post", "/api/generate", key=secret, json=body, headers=ASYNC)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "TOO_MANY_CONCURRENT_JOBS"
    assert response["Retry-After"] == "5"  # nothing has run yet: JOB_TYPICAL_S
    assert Job.objects.filter(user=alice).count() == 2
    assert balance(alice) == 48


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_40_concurrent_submits_against_a_cap_of_3_jobs_accept_exactly_3():
    """The count of active jobs and the new job's INSERT are one statement, under the balance
    lock: no two submits can both see room for the last job."""
    user = make_user("jobrace@example.com", plan="pro")
    Plan.objects.filter(slug="pro").update(max_concurrent_jobs=3)
    accepted, refused = race_submits(user, None, threads=40)
    assert len(accepted) == 3
    assert refused == ["TOO_MANY_CONCURRENT_JOBS"] * 37
    assert sorted(Job.objects.filter(user=user).values_list("pk", flat=True)) == sorted(accepted)
    assert LedgerEntry.objects.filter(user=user, kind="debit").count() == 3
    sepia = Template.objects.get(name="Sepia")
    assert CreditBalance.objects.get(user=user).total == 500 - 3 * sepia.cost


def test_the_job_cap_retry_after_is_when_a_running_job_should_finish(api, alice, alice_key):
    _, secret = alice_key
    now = timezone.now()
    for seconds in (9, 10, 11):  # past jobs took 10 s at the median
        Job.objects.create(
            user=alice,
            kind="generate",
            status="succeeded",
            started_at=now - timedelta(minutes=5),
            finished_at=now - timedelta(minutes=5) + timedelta(seconds=seconds),
        )
    Job.objects.create(user=alice, kind="generate", status="running", started_at=now)
    Job.objects.create(
        user=alice, kind="generate", status="running", started_at=now - timedelta(seconds=3)
    )
    body = {"image": sample_b64(), "template": "Grayscale", "templateType": "filters"}
    response = api("post", "/api/generate", key=secret, json=body, headers=ASYNC)
    assert response.status_code == 429
    assert response["Retry-After"] in ("7", "8")  # 10 s less the 3 s (and a moment) it has run
    assert response.json()["error"]["details"]["retry_after"] == int(response["Retry-After"])


def test_cancel_a_queued_job_refunds_it(api, alice, alice_key):
    _, secret = alice_key
    job_id = api(
        "post",
        "/api/generate",
        key=secret,
        json={"image": sample_b64(), "template": "Sepia", "templateType": "filters"},
        headers=ASYNC,
    ).json()["data"]["id"]
    assert balance(alice) == 49
    response = api("post", f"/api/jobs/{job_id}/cancel", key=secret)
    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["status"], data["credits"], data["refunded_credits"]) == ("cancelled", 0, 1)
    assert balance(alice) == 50
    data = api("get", f"/api/jobs/{job_id}", key=secret).json()["data"]
    assert (data["credits"], data["refunded_credits"]) == (0, 1)
    again = api("post", f"/api/jobs/{job_id}/cancel", key=secret)
    assert again.status_code == 409
    assert balance(alice) == 50


def test_another_users_job_is_404_everywhere(api, alice_key, bob, mint):
    _, bob_secret = mint(bob)
    job_id = api(
        "post",
        "/api/generate",
        key=bob_secret,
        json={"image": sample_b64(), "template": "Sepia", "templateType": "filters"},
        headers=ASYNC,
    ).json()["data"]["id"]
    _, secret = alice_key
    for method, path in [
        ("get", f"/api/jobs/{job_id}"),
        ("get", f"/api/jobs/{job_id}/output"),
        ("post", f"/api/jobs/{job_id}/cancel"),
    ]:
        response = api(method, path, key=secret)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "NOT_FOUND"
    assert Job.objects.get(pk=job_id).status == "queued"
    assert api("get", "/api/jobs", key=secret).json()["data"]["jobs"] == []


def test_a_failing_engine_fails_the_job_and_refunds(alice):
    template = Template.objects.create(
        name="Broken", type="filters", parameters={"op": "no-such-op"}
    )
    job = actions.submit_generate(alice, None, image=sample_b64(), template=template, params={}).job
    assert balance(alice) == 49
    run_job(str(job.pk))  # the task body, in this process
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "ENGINE_ERROR")
    assert balance(alice) == 50
    run_job(str(job.pk))  # safe to run twice
    assert LedgerEntry.objects.filter(job=job, kind="refund").count() == 1


def test_a_poison_job_stops_after_three_attempts(alice, settings):
    template = Template.objects.get(name="Sepia")
    job = actions.submit_generate(alice, None, image=sample_b64(), template=template, params={}).job
    Job.objects.filter(pk=job.pk).update(attempts=settings.JOB_MAX_ATTEMPTS)
    assert claim(str(job.pk)) is None
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "WORKER_LOST")
    assert balance(alice) == 50


def test_templates_are_grouped_with_availability(api, alice_key, settings):
    settings.UPSTREAM_IMAGES_URL = settings.GEMINI_API_KEY = settings.OPENAI_API_KEY = ""
    _, secret = alice_key
    types = api("get", "/api/templates", key=secret).json()["data"]["types"]
    by_type = {group["type"]: group["templates"] for group in types}
    assert set(by_type) >= {"styles", "filters", "adjustments", "frames", "expressions"}
    builtin = [t for group in by_type.values() for t in group if t["engine"] == "builtin"]
    assert len(builtin) >= 12
    assert all(t["available"] for t in builtin)
    laugh = next(t for t in by_type["expressions"] if t["name"] == "Joyful Laugh")
    assert laugh["available"] is False
    assert laugh["unavailable_reason"] == providers.NO_PROVIDER


def test_jobs_list_is_cursor_paginated_and_filtered(api, db, mint):
    user = make_user("pager@example.com", plan="enterprise")
    _, secret = mint(user)
    for _ in range(5):
        api(
            "post",
            "/api/generate",
            key=secret,
            json={"image": sample_b64(), "template": "Sepia", "templateType": "filters"},
            headers=ASYNC,
        )
    first = api("get", "/api/jobs?limit=2", key=secret).json()["data"]
    second = api("get", f"/api/jobs?limit=2&cursor={first['next_cursor']}", key=secret).json()[
        "data"
    ]
    third = api("get", f"/api/jobs?limit=2&cursor={second['next_cursor']}", key=secret).json()[
        "data"
    ]
    ids = [j["id"] for page in (first, second, third) for j in page["jobs"]]
    assert len(ids) == len(set(ids)) == 5
    assert third["next_cursor"] is None
    assert api("get", "/api/jobs?status=succeeded", key=secret).json()["data"]["jobs"] == []
    assert (
        len(api("get", "/api/jobs?status=queued&kind=generate", key=secret).json()["data"]["jobs"])
        == 5
    )
    assert api("get", "/api/jobs?cursor=garbage", key=secret).status_code == 400
    assert sample_png()  # the fixture image is real


@pytest.mark.parametrize("kept_in", ["row", "file"])
def test_an_input_is_kept_in_its_row_or_as_a_file_by_its_size(client, alice, settings, kept_in):
    from studio import storage

    raw = sample_png()
    limit = len(raw) if kept_in == "row" else len(raw) - 1
    settings.JOB_INPUT_INLINE_MAX_BYTES = limit
    job = actions.submit_generate(
        alice, None, image=_b64(raw), template=Template.objects.get(name="Sepia"), params={}
    ).job
    if kept_in == "row":  # written with the job: no file, not even the job's folder
        assert job.input_file == ""
        assert bytes(JobInput.objects.get(job=job).data) == raw
        assert not storage.job_files().exists(f"jobs/{job.pk}")
    else:
        assert not JobInput.objects.filter(job=job).exists()
        with storage.job_files().open(job.input_file, "rb") as file:
            assert file.read() == raw
    run_job(str(job.pk))  # the worker reads it from where it is
    job.refresh_from_db()
    assert job.status == "succeeded", job.error_message
    client.force_login(alice)
    before = client.get(reverse("studio:file", args=[job.pk, "input"]))
    assert before.status_code == 200 and before["Content-Type"] == "image/png"
    assert b"".join(before.streaming_content) == raw
    assert "Before" in client.get(reverse("studio:job", args=[job.pk])).text


@pytest.mark.parametrize("kept_in", ["row", "file"])
def test_inputs_and_outputs_are_purged_after_the_retention_period(client, alice, settings, kept_in):
    from studio import storage
    from studio.tasks import purge_old_outputs

    settings.JOB_INPUT_INLINE_MAX_BYTES = 64 * 1024 if kept_in == "row" else 0
    job = actions.submit_generate(
        alice, None, image=sample_b64(), template=Template.objects.get(name="Sepia"), params={}
    ).job
    run_job(str(job.pk))
    job.refresh_from_db()
    names = [name for name in (job.input_file, job.output_file) if name]
    assert len(names) == (1 if kept_in == "row" else 2)
    assert all(storage.job_files().exists(name) for name in names)
    assert JobInput.objects.filter(job=job).exists() == (kept_in == "row")
    assert purge_old_outputs() == 0
    Job.objects.filter(pk=job.pk).update(
        created_at=timezone.now() - timedelta(days=settings.JOB_OUTPUT_RETENTION_DAYS, minutes=1)
    )
    assert purge_old_outputs() == 1
    job.refresh_from_db()
    assert (job.input_file, job.output_file, job.status) == ("", "", "succeeded")
    assert not any(storage.job_files().exists(name) for name in names)
    assert not JobInput.objects.filter(job=job).exists()
    client.force_login(alice)
    assert client.get(reverse("studio:file", args=[job.pk, "input"])).status_code == 404
