"""`make bench ARGS=storage`."""

from __future__ import annotations

import os
import statistics
import time

from bench.harness import ENV, PROXY_HEADERS, bench_user, gunicorn, record, sepia_body
from tests.processes import free_port, start_s3, start_worker, stop_process

BUCKET = "nano-jobs-bench"
JOBS = 30
DOWNLOADS = 100


def _bucket_env(port: int) -> dict[str, str]:
    return {
        "AWS_STORAGE_BUCKET_NAME": BUCKET,
        "AWS_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_S3_REGION_NAME": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench-secret",
        "AWS_S3_ADDRESSING_STYLE": "path",
    }


def _measure(label: str, secret: str, extra: dict[str, str]) -> None:
    import requests

    os.environ.update(extra)  # gunicorn() starts with this process's environment
    worker = start_worker({**os.environ, **ENV, **extra}, "--concurrency", "2")
    try:
        with gunicorn() as base:
            session = requests.Session()
            auth = {**PROXY_HEADERS, "Authorization": f"Bearer {secret}"}
            latencies, job_id = [], ""
            for n in range(JOBS + 3):
                started = time.perf_counter()
                response = session.post(
                    f"{base}/api/generate", json=sepia_body(), headers=auth, timeout=60
                )
                elapsed = time.perf_counter() - started
                assert response.status_code == 200, response.text
                job_id = response.json()["data"]["id"]
                if n >= 3:  # warm-up: connections, the worker's first job
                    latencies.append(elapsed * 1000)
            record(
                f"storage: submit-to-done, 64x64 Sepia, sync, {label} (median of {JOBS})",
                statistics.median(latencies),
                "ms",
            )
            answers = []
            for _ in range(DOWNLOADS):
                started = time.perf_counter()
                response = session.get(
                    f"{base}/api/jobs/{job_id}/output",
                    headers=auth,
                    allow_redirects=False,
                    timeout=30,
                )
                answers.append((time.perf_counter() - started) * 1000)
                assert response.status_code in (200, 302), response.status_code
            what = "302 to a presigned URL" if response.status_code == 302 else "200 streamed"
            record(
                f"storage: GET /output, {label}: {what} (median of {DOWNLOADS})",
                statistics.median(answers),
                "ms",
            )
    finally:
        stop_process(worker)
        for name in extra:
            os.environ.pop(name, None)


def run() -> None:
    """Job latency with files on the local folder and on an S3-compatible bucket (moto's
    server, in memory, on this machine), and the output download: streamed or redirected."""
    import boto3

    _, secret = bench_user("storage@bench.example", scopes=["generate", "jobs:read"])
    _measure("local folder", secret, {})
    port = free_port()
    s3 = start_s3(port)
    try:
        bucket = _bucket_env(port)
        boto3.client(
            "s3",
            endpoint_url=bucket["AWS_S3_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench-secret",
        ).create_bucket(Bucket=BUCKET)
        _measure("S3 bucket (moto)", secret, bucket)
    finally:
        stop_process(s3)
