"""`{{ text|label_text }}`: allauth's label slots end in a colon; the product's labels do not."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def label_text(value: str) -> str:
    return value.strip().removesuffix(":").strip()
