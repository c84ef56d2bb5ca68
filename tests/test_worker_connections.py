"""A worker keeps its database connection from job to job (a new one cost each job ~5 ms), and
one the server dropped meanwhile costs no job: it is checked before a task's first query."""

from __future__ import annotations

import pytest
from django.db import connection

from conftest import make_user, sample_b64

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def _worker_backends() -> set[int]:
    """The server processes of every other connection to this test database: the worker's."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        return {pid for (pid,) in cursor.fetchall()}


def test_a_worker_keeps_its_connection_and_survives_losing_it(api, celery_worker, mint):
    _, secret = mint(make_user("connections@example.com", plan="pro"))
    body = {"image": sample_b64(), "template": "Sepia", "templateType": "filters"}

    def run_one() -> None:
        answer = api("post", "/api/generate", key=secret, json=body)
        assert answer.status_code == 200, answer.content
        assert answer.json()["data"]["status"] == "succeeded"

    run_one()
    kept = _worker_backends()
    assert kept
    for _ in range(3):
        run_one()
    assert _worker_backends() == kept  # the same connections, not new ones per job

    with connection.cursor() as cursor:  # as a database restart would
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [list(kept)]
        )
    run_one()  # checked, replaced, and the job runs
    assert not _worker_backends() & kept
