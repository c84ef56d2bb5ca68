"""The folders the settings point into (the embedded database, broker and results, static
files), made by each entry point (manage.py, WSGI, ASGI, Celery) before it needs them, so
that importing the settings writes nothing."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings


def make_var_folders() -> None:
    for folder in settings.VAR_FOLDERS:
        Path(folder).mkdir(parents=True, exist_ok=True)
