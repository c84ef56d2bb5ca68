"""System checks for the API-key digests' pepper."""

from __future__ import annotations

from collections.abc import Sequence

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import Error, Tags, register

PEPPER_MIN_LENGTH = 32


@register(Tags.security, deploy=True)
def check_api_key_pepper(app_configs: Sequence[AppConfig] | None, **kwargs: object) -> list[Error]:
    """`manage.py check --deploy` fails on a weak pepper: with DEBUG off the digests in the
    database are only as hard to reverse as the pepper is to guess."""
    if settings.DEBUG:
        return []
    pepper = settings.API_KEY_PEPPER
    errors = []
    if pepper == settings.SECRET_KEY:
        errors.append(
            Error(
                "API_KEY_PEPPER equals SECRET_KEY.",
                hint="Set API_KEY_PEPPER to its own random value: rotating SECRET_KEY must "
                "not change, or reveal, every API key's digest.",
                id="apikeys.E001",
            )
        )
    if len(pepper) < PEPPER_MIN_LENGTH:
        errors.append(
            Error(
                f"API_KEY_PEPPER is {len(pepper)} characters; at least {PEPPER_MIN_LENGTH} "
                "are required.",
                hint='Generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))"',
                id="apikeys.E002",
            )
        )
    return errors
