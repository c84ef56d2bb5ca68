"""Two machines, simulated: two web processes and two workers, each with its own empty
working folder and no shared disk, against one PostgreSQL, one Redis and a real
S3-compatible server. A job submitted to web A runs on either worker, and its output
downloads from web B through a short-lived presigned URL; retention deletes the objects."""

from __future__ import annotations

import io
import time
from datetime import timedelta

import boto3
import pytest
import requests
from django.utils import timezone
from PIL import Image

from conftest import make_user, sample_b64, worker_env
from studio.models import Job
from tests.processes import free_port, start_s3, start_web, start_worker, stop_process

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
BUCKET = "nano-jobs"


def _bucket_env(s3_port: int) -> dict[str, str]:
    return {
        "AWS_STORAGE_BUCKET_NAME": BUCKET,
        "AWS_S3_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
        "AWS_S3_REGION_NAME": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test-key",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
        "AWS_S3_ADDRESSING_STYLE": "path",
    }


def _objects(client) -> list[str]:
    return [item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_a_job_submitted_on_one_machine_downloads_from_another(mint, tmp_path, settings):
    s3_port = free_port()
    s3 = start_s3(s3_port)
    bucket = _bucket_env(s3_port)
    client = boto3.client(
        "s3",
        endpoint_url=bucket["AWS_S3_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="test-key",
        aws_secret_access_key="test-secret",
    )
    client.create_bucket(Bucket=BUCKET)
    machines = []
    try:
        for name in ("a", "b"):
            folder = tmp_path / name  # each machine's own disk, empty
            folder.mkdir()
            # Every input to the bucket, as one over JOB_INPUT_INLINE_MAX_BYTES goes.
            env = worker_env(
                {
                    **bucket,
                    "VAR_DIR": str(folder),
                    "MEDIA_ROOT": str(folder / "m"),
                    "JOB_INPUT_INLINE_MAX_BYTES": "0",
                }
            )
            port = free_port()
            machines.append(
                {
                    "folder": folder,
                    "web": start_web(env, port),
                    "url": f"http://127.0.0.1:{port}",
                    "worker": start_worker(env, "--hostname", f"worker-{name}@%h"),
                }
            )
        user = make_user("machines@example.com", plan="pro")
        _, secret = mint(user)
        auth = {"Authorization": f"Bearer {secret}"}
        submitted = requests.post(
            f"{machines[0]['url']}/api/generate",
            json={"image": sample_b64(), "template": "Sepia", "templateType": "filters"},
            headers={**auth, "Prefer": "respond-async"},
            timeout=30,
        )
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["data"]["id"]
        deadline = time.monotonic() + 60
        while not Job.objects.get(pk=job_id).is_final and time.monotonic() < deadline:
            time.sleep(0.1)
        job = Job.objects.get(pk=job_id)
        assert job.status == "succeeded", (job.error_code, job.error_message)
        assert sorted(_objects(client)) == sorted([job.input_file, job.output_file])
        # Web B has never seen the job's files: it redirects to the bucket.
        output = f"{machines[1]['url']}/api/jobs/{job_id}/output"
        redirect = requests.get(output, headers=auth, allow_redirects=False, timeout=30)
        assert redirect.status_code == 302
        signed = redirect.headers["Location"]
        assert signed.startswith(f"{bucket['AWS_S3_ENDPOINT_URL']}/{BUCKET}/jobs/{job_id}/")
        assert "X-Amz-Signature=" in signed and "X-Amz-Expires=300" in signed
        assert secret not in signed
        image = Image.open(io.BytesIO(requests.get(signed, timeout=30).content))
        assert image.format == "PNG" and image.size == (96, 64)
        # A client following the redirect (requests does; it drops the key on the way).
        followed = requests.get(output, headers=auth, timeout=30)
        assert followed.status_code == 200 and followed.content[:8] == b"\x89PNG\r\n\x1a\n"
        # The Studio's pages may show the bucket's images (their CSP names its origin).
        page = requests.get(f"{machines[1]['url']}/accounts/login/", timeout=30)
        img_src = next(
            part
            for part in page.headers["Content-Security-Policy"].split(";")
            if part.strip().startswith("img-src")
        )
        assert bucket["AWS_S3_ENDPOINT_URL"] in img_src
        # No disk of either machine holds a job file.
        for machine in machines:
            assert not list(machine["folder"].rglob("jobs/*")), machine["folder"]
        # /readyz on each machine checks the bucket.
        for machine in machines:
            ready = requests.get(f"{machine['url']}/readyz", timeout=30).json()
            assert ready["checks"]["storage"] == "ok"
        # Retention deletes the objects (the job row stays, as history).
        Job.objects.filter(pk=job_id).update(
            created_at=timezone.now() - timedelta(days=settings.JOB_OUTPUT_RETENTION_DAYS + 1)
        )
        for name, value in bucket.items():
            setattr(settings, name, value or None)
        settings.STORAGES = {
            **settings.STORAGES,
            "jobs": {"BACKEND": "storages.backends.s3.S3Storage"},
        }
        from studio.tasks import purge_old_outputs

        assert purge_old_outputs() == 1
        assert _objects(client) == []
        gone = requests.get(output, headers=auth, allow_redirects=False, timeout=30)
        assert gone.status_code == 404
    finally:
        for machine in machines:
            stop_process(machine["web"])
            stop_process(machine["worker"])
        stop_process(s3)
