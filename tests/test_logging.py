"""Log lines an operator can follow: JSON on request, and a request's id on the log lines of
the job it sent to a worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import sample_b64, worker_env
from studio.models import Template
from tests.processes import start_worker, stop_process, wait_for_log
from tests.test_jobs_worker import _wait_until_final

ROOT = Path(__file__).resolve().parent.parent


def test_log_format_json_writes_one_object_per_line(tmp_path):
    code = (
        "import logging; "
        "logging.getLogger('nanostudio.jobs').warning('job \"late\"', extra={'job_id': 'j1'})"
    )
    env = {**os.environ, "LOG_FORMAT": "json", "VAR_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["msg"] == 'job "late"' and line["job_id"] == "j1"
    assert line["level"] == "warning" and line["logger"] == "nanostudio.jobs"
    assert line["request_id"] == "-" and line["ts"].endswith("+00:00")
    bad = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**env, "LOG_FORMAT": "xml"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "LOG_FORMAT='xml'" in bad.stderr


@pytest.mark.django_db(transaction=True)
def test_a_requests_id_is_on_the_log_lines_of_the_job_it_sent(api, alice_key, tmp_path):
    Template.objects.create(name="Broken", type="filters", parameters={"op": "nope"})
    log = tmp_path / "worker.log"
    worker = start_worker(worker_env({"LOG_LEVEL": "DEBUG"}), log=log)
    try:
        response = api(
            "post",
            "/api/generate",
            key=alice_key[1],
            json={"image": sample_b64(), "template": "Broken", "templateType": "filters"},
            headers={"Prefer": "respond-async", "X-Request-Id": "req_traced0001"},
        )
        assert response.status_code == 202
        job_id = response.json()["data"]["id"]
        assert _wait_until_final(job_id).status == "failed"
        wait_for_log(log, 'msg="job failed"')  # written just after the job's commit
    finally:
        stop_process(worker)
    # Our lines about the job, written while the task ran (Celery's own "received" line comes
    # before the task starts, in the worker's main process).
    ours = [
        line
        for line in log.read_text().splitlines()
        if job_id in line and "logger=nanostudio" in line
    ]
    assert any('msg="job failed"' in line for line in ours), ours
    assert all("request_id=req_traced0001" in line for line in ours), ours
