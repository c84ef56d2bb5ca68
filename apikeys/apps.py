from __future__ import annotations

from django.apps import AppConfig


class ApikeysConfig(AppConfig):
    name = "apikeys"
