"""Webhook signing secrets at rest: encrypted with Fernet (AES-128-CBC + HMAC-SHA256).

The key is WEBHOOK_SECRETS_KEY (a Fernet key) or, without one, derived from SECRET_KEY; set
your own to be able to rotate SECRET_KEY without re-creating every endpoint's secret.
"""

from __future__ import annotations

import base64
import functools
import hashlib

from cryptography.fernet import Fernet
from django.conf import settings


@functools.cache
def _fernet(key_material: str) -> Fernet:
    if settings.WEBHOOK_SECRETS_KEY:
        return Fernet(settings.WEBHOOK_SECRETS_KEY.encode())
    digest = hashlib.sha256(f"nano-studio webhook secrets:{key_material}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _current() -> Fernet:
    return _fernet(settings.WEBHOOK_SECRETS_KEY or settings.SECRET_KEY)


def encrypt(secret: str) -> str:
    return _current().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    return _current().decrypt(token.encode()).decode()
