from __future__ import annotations

import pytest
from django.urls import reverse

from conftest import sample_b64
from studio import actions
from studio.models import Job, Template
from studio.tasks import run_job


@pytest.fixture
def bob_job(bob):
    job = actions.submit_generate(
        bob, None, image=sample_b64(), template=Template.objects.get(name="Sepia"), params={}
    ).job
    run_job(str(job.pk))
    return job


def test_another_users_job_pages_and_files_are_404(alice_client, bob_job):
    for url in (
        reverse("studio:job", args=[bob_job.pk]),
        reverse("studio:file", args=[bob_job.pk, "output"]),
        reverse("studio:file", args=[bob_job.pk, "input"]),
    ):
        assert alice_client.get(url).status_code == 404
    assert alice_client.post(reverse("studio:cancel", args=[bob_job.pk])).status_code == 404
    assert str(bob_job.pk) not in alice_client.get(reverse("studio:jobs")).content.decode()
    assert Job.objects.get(pk=bob_job.pk).status == "succeeded"


def test_the_owner_sees_status_before_after_and_download(client, bob, bob_job):
    client.force_login(bob)
    html = client.get(reverse("studio:job", args=[bob_job.pk])).content.decode()
    assert "Succeeded" in html
    assert 'alt="Your image, before"' in html
    assert "Download PNG" in html
    response = client.get(reverse("studio:file", args=[bob_job.pk, "output"]) + "?download=1")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    partial = client.get(
        reverse("studio:job", args=[bob_job.pk]), headers={"HX-Request": "true"}
    ).content.decode()
    assert partial.lstrip().startswith('<div id="job-status"')
    assert "hx-trigger" not in partial  # a finished job stops polling


def test_a_queued_job_polls_and_can_be_cancelled(client, bob):
    job = actions.submit_generate(
        bob, None, image=sample_b64(), template=Template.objects.get(name="Sepia"), params={}
    ).job
    client.force_login(bob)
    assert (
        'hx-trigger="every 1s"' in client.get(reverse("studio:job", args=[job.pk])).content.decode()
    )
    client.post(reverse("studio:cancel", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == "cancelled"


def test_studio_rejects_a_bad_upload_with_a_message(client, bob):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(bob)
    upload = SimpleUploadedFile("photo.png", b"not really a png", content_type="image/png")
    template = Template.objects.get(name="Sepia")
    response = client.post(
        reverse("studio:run"), {"kind": "generate", "template": template.pk, "image": upload}
    )
    assert response.status_code == 422
    assert "not a readable PNG" in response.content.decode()
    assert Job.objects.filter(user=bob).count() == 0
