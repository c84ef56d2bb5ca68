from __future__ import annotations

from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def from_the_ledger(apps, schema_editor):
    """Jobs refunded before the field existed: the time of their refund entry."""
    Job = apps.get_model("studio", "Job")
    LedgerEntry = apps.get_model("billing", "LedgerEntry")
    refunds = LedgerEntry.objects.filter(kind="refund")
    Job.objects.filter(pk__in=refunds.values("job")).update(
        refunded_at=Subquery(refunds.filter(job=OuterRef("pk")).values("created_at")[:1])
    )


class Migration(migrations.Migration):
    dependencies = [
        ("studio", "0007_job_heartbeat"),
        ("billing", "0010_usage_moves_to_its_own_app"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="refunded_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(from_the_ledger, migrations.RunPython.noop),
    ]
