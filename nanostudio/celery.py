from __future__ import annotations

import os

from celery import Celery

from nanostudio.dirs import make_var_folders
from nanostudio.logging import connect_celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanostudio.settings")

make_var_folders()  # the embedded broker's folders must exist before a worker starts
app = Celery("nanostudio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
connect_celery()


@app.task(name="nanostudio.ping", ignore_result=False, soft_time_limit=5, time_limit=10)
def ping() -> str:
    """Health check: proves a worker is consuming from the broker."""
    return "pong"
