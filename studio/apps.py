from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import m2m_changed, post_delete, post_save


class StudioConfig(AppConfig):
    name = "studio"

    def ready(self) -> None:
        from billing.models import Plan
        from studio import catalogue
        from studio.models import Template

        for model in (Template, Plan):
            post_save.connect(catalogue.changed, sender=model, dispatch_uid=f"catalogue-{model}")
            post_delete.connect(
                catalogue.changed, sender=model, dispatch_uid=f"catalogue-d-{model}"
            )
        m2m_changed.connect(
            catalogue.changed, sender=Template.plans.through, dispatch_uid="catalogue-m2m"
        )
