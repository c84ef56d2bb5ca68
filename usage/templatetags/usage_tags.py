"""{% keys_with_health keys as rows %}: each key with its hygiene (usage.hygiene), for the API
Keys page (the apikeys app shows it without importing this one)."""

from __future__ import annotations

from typing import Any

from django import template

from usage import hygiene

register = template.Library()


@register.simple_tag
def keys_with_health(keys: list[Any]) -> list[tuple[Any, hygiene.KeyHealth]]:
    if not keys:
        return []
    health = hygiene.health(keys[0].user_id, keys)
    return [(key, health[key.pk]) for key in keys]
