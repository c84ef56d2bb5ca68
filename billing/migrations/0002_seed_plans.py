from __future__ import annotations

from django.db import migrations

PLANS = [
    {
        "slug": "free",
        "name": "Free",
        "description": "For trying things out.",
        "monthly_credits": 50,
        "rate_per_minute": 10,
        "burst": 15,
        "max_api_keys": 5,
        "max_concurrent_jobs": 2,
        "price_cents": 0,
        "sort_order": 10,
        "webhooks": False,
    },
    {
        "slug": "pro",
        "name": "Pro",
        "description": "For apps in production.",
        "monthly_credits": 500,
        "rate_per_minute": 60,
        "burst": 90,
        "max_api_keys": 20,
        "max_concurrent_jobs": 5,
        "price_cents": 1900,
        "sort_order": 20,
        "webhooks": True,
    },
    {
        "slug": "enterprise",
        "name": "Enterprise",
        "description": "Unlimited credits, custom terms.",
        "monthly_credits": None,
        "rate_per_minute": 600,
        "burst": 900,
        "max_api_keys": 100,
        "max_concurrent_jobs": 20,
        "price_cents": None,
        "sort_order": 30,
        "webhooks": True,
    },
]


def seed_plans(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for fields in PLANS:
        fields = dict(fields)
        slug = fields.pop("slug")
        webhooks = fields.pop("webhooks")
        fields["features"] = {
            "job_kinds": ["generate", "ocr"],
            "template_types": [],
            "webhooks": webhooks,
        }
        Plan.objects.update_or_create(slug=slug, defaults=fields)


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(seed_plans, migrations.RunPython.noop)]
