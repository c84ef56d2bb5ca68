from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from tests.processes import free_port, start_redis, stop_process

ROOT = Path(__file__).resolve().parent.parent


def _production_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TESTING", "SECURE_SSL_REDIRECT", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    env.update(
        DEBUG="0",
        SECRET_KEY="k" * 20 + "-production-like-secret-" + "q7Zr9" * 8,
        API_KEY_PEPPER="pepper-" + "p" * 40,
        ALLOWED_HOSTS="studio.example.com",
    )
    return env


def test_check_deploy_passes_with_production_settings(tmp_path):
    # The usage events' Redis keeps them on disk before answering (usage.stream).
    port = free_port()
    durable = start_redis(port, "--appendonly", "yes", "--appendfsync", "always", folder=tmp_path)
    try:
        result = _check_deploy(REDIS_USAGE_URL=f"redis://127.0.0.1:{port}/0")
    finally:
        stop_process(durable)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.services
def test_check_deploy_warns_when_the_usage_redis_keeps_nothing_on_disk():
    port = free_port()
    forgetful = start_redis(port)  # no AOF
    try:
        result = _check_deploy(REDIS_USAGE_URL=f"redis://127.0.0.1:{port}/0")
    finally:
        stop_process(forgetful)
    assert result.returncode == 1
    assert "usage.W001" in result.stderr
    assert "appendonly is no, appendfsync is everysec" in result.stderr


def test_secret_key_is_required_outside_debug():
    env = _production_env()
    del env["SECRET_KEY"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


@override_settings(SECURE_SSL_REDIRECT=True)
def test_plain_http_pages_redirect_to_https(client, db):
    response = client.get("/accounts/login/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/accounts/login/"
    # Behind the proxy, a request that arrived over HTTPS is served.
    response = client.get("/accounts/login/", headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == 200
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")


def test_log_lines_are_logfmt():
    import logging

    from nanostudio.logging import LogfmtFormatter

    record = logging.LogRecord(
        "nanostudio.test", logging.INFO, __file__, 1, "job %s done", (7,), None
    )
    record.job_id = 7
    record.request_id = "req_abc"
    line = LogfmtFormatter().format(record)
    assert line.startswith("ts=")
    assert 'level=info logger=nanostudio.test msg="job 7 done" request_id=req_abc job_id=7' in line


def _check_deploy(**overrides: str) -> subprocess.CompletedProcess:
    env = {**_production_env(), **overrides}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_fails_when_the_pepper_is_the_secret_key():
    secret = "k" * 20 + "-production-like-secret-" + "q7Zr9" * 8
    result = _check_deploy(SECRET_KEY=secret, API_KEY_PEPPER=secret)
    assert result.returncode == 1
    assert "apikeys.E001" in result.stderr
    assert "apikeys.E002" not in result.stderr


def test_check_deploy_fails_on_a_short_pepper():
    result = _check_deploy(API_KEY_PEPPER="p")
    assert result.returncode == 1
    assert "(apikeys.E002) API_KEY_PEPPER is 1 characters; at least 32 are required." in (
        result.stderr
    )
