from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import m2m_changed, post_delete, post_save


class StudioConfig(AppConfig):
    name = "studio"

    def ready(self) -> None:
        from billing.models import Plan
        from studio import catalogue
        from studio.models import Template

        # What the in-memory catalogue holds: the templates and their plan lists. Deleting a
        # plan removes it from those lists without an m2m_changed signal.
        post_save.connect(catalogue.changed, sender=Template, dispatch_uid="catalogue-save")
        post_delete.connect(catalogue.changed, sender=Template, dispatch_uid="catalogue-delete")
        m2m_changed.connect(
            catalogue.changed, sender=Template.plans.through, dispatch_uid="catalogue-plans"
        )
        post_delete.connect(catalogue.changed, sender=Plan, dispatch_uid="catalogue-plan-delete")
