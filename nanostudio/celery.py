from __future__ import annotations

import os

from celery import Celery, signals
from django.conf import settings
from django.db import close_old_connections

from nanostudio.dirs import make_var_folders
from nanostudio.logging import connect_celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanostudio.settings")

make_var_folders()  # the embedded broker's folders must exist before a worker starts
app = Celery("nanostudio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
connect_celery()
# Around every task, as Django does around every request (see CELERY_DB_REUSE_MAX).
signals.task_prerun.connect(close_old_connections, weak=False, dispatch_uid="db-prerun")
signals.task_postrun.connect(close_old_connections, weak=False, dispatch_uid="db-postrun")


@signals.worker_init.connect
def _check_kept_connections(**_: object) -> None:
    """A worker's kept connection is checked before each task's first query (one round trip,
    ~0.1 ms), so a job right after a database restart gets a new one instead of failing."""
    for database in settings.DATABASES.values():
        database["CONN_HEALTH_CHECKS"] = True


@app.task(name="nanostudio.ping", ignore_result=False, soft_time_limit=5, time_limit=10)
def ping() -> str:
    """Health check: proves a worker is consuming from the broker."""
    return "pong"
