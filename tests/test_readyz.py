"""`/healthz` (alive) and `/readyz` (may take traffic): the readiness answer names what is
down, and recovers when it is back."""

from __future__ import annotations

import pytest

from nanostudio import health
from tests.processes import free_port, start_redis, stop_process


@pytest.fixture(autouse=True)
def _fresh_answer():
    health._last = None  # each step below asks again instead of reading the cached answer
    yield
    health._last = None


def test_ready_when_everything_answers(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["down"] == []
    assert body["checks"]["database"] == body["checks"]["storage"] == "ok"
    assert response["Cache-Control"] == "no-store"
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.services
def test_not_ready_while_a_redis_is_down_and_ready_again_after(client, db, settings):
    port = free_port()
    server = start_redis(port)
    settings.REDIS_LIMITER_URL = f"redis://127.0.0.1:{port}/0"
    try:
        assert client.get("/readyz").status_code == 200
        stop_process(server)
        health._last = None
        down = client.get("/readyz")
        assert down.status_code == 503
        body = down.json()
        assert body["status"] == "unavailable" and body["down"] == ["redis"]
        assert f"127.0.0.1:{port}" in body["checks"]["redis"]
        assert down["Retry-After"] == str(health.READYZ_CACHE_S)
        assert client.get("/healthz").status_code == 200  # alive all the same
        # The answer is kept for a few seconds: a load balancer's polling costs Redis little.
        server = start_redis(port)
        assert client.get("/readyz").status_code == 503
        health._last = None
        assert client.get("/readyz").status_code == 200
    finally:
        stop_process(server)


def test_not_ready_when_the_job_folder_cannot_be_made(client, db, settings, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    settings.MEDIA_ROOT = tmp_path / "a-file" / "media"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["down"] == ["storage"]
    assert "Not a directory" in response.json()["checks"]["storage"]
