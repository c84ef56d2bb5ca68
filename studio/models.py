from __future__ import annotations

import functools
import math
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone

from nanostudio import inserts, metrics
from studio.signals import job_finished

if TYPE_CHECKING:
    from billing.models import Plan


class TemplateQuerySet(models.QuerySet["Template"]):
    def enabled(self) -> TemplateQuerySet:
        return self.filter(enabled=True)

    def catalogue(self, plan: Plan | None) -> list[tuple[str, list[Template]]]:
        """Enabled templates grouped by type, each with `unavailable_reason` (None if usable)."""
        groups: dict[str, list[Template]] = {}
        engine_reasons: dict[str, str | None] = {}  # asked once per engine, not per template
        for template in self.enabled().prefetch_related("plans"):
            if not template.offered_on(plan):
                template.unavailable_reason = "Your plan does not include this template."
            else:
                if template.engine not in engine_reasons:
                    engine_reasons[template.engine] = template.engine_unavailable_reason()
                template.unavailable_reason = engine_reasons[template.engine]
            groups.setdefault(template.type, []).append(template)
        return list(groups.items())


class Template(models.Model):
    """A catalogue entry: what a generate job does. Admin-editable."""

    class Engine(models.TextChoices):
        BUILTIN = "builtin", "Built-in (Pillow)"
        AUTO = "auto", "Image model: the server's default provider"
        GEMINI = "gemini", "Gemini (GEMINI_API_KEY)"
        OPENAI = "openai", "OpenAI (OPENAI_API_KEY)"
        UPSTREAM = "upstream", "OpenAI-compatible server (UPSTREAM_IMAGES_URL)"

    name = models.CharField(max_length=80)
    type = models.SlugField(max_length=40, help_text="e.g. styles, filters, adjustments, frames")
    description = models.CharField(max_length=200, blank=True)
    engine = models.CharField(max_length=20, choices=Engine.choices, default=Engine.BUILTIN)
    prompt = models.TextField(
        blank=True, help_text="Image models: the instruction sent with the user's image."
    )
    model = models.CharField(
        max_length=100,
        blank=True,
        help_text="Gemini, OpenAI or server engines: one of its models; empty for its default.",
    )
    parameters = models.JSONField(
        default=dict,
        blank=True,
        help_text=(
            'Built-in: {"op": …}. Gemini: "aspect_ratio", "image_size". OpenAI and servers: '
            '"size", "quality", "background", "input_fidelity".'
        ),
    )
    credit_cost = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Empty: 1 on the built-in engine, the model's cost on an image model.",
    )

    # Not a column: why the template cannot be used now, set by TemplateQuerySet.catalogue().
    unavailable_reason: str | None = None
    plans = models.ManyToManyField(
        "billing.Plan", blank=True, help_text="Leave empty to offer it on every plan."
    )
    enabled = models.BooleanField(default=True)
    preview = models.ImageField(upload_to="previews/", blank=True)
    sort_order = models.PositiveSmallIntegerField(default=0)

    objects = TemplateQuerySet.as_manager()

    class Meta:
        ordering = ["sort_order", "name"]
        constraints = [
            models.UniqueConstraint(fields=["type", "name"], name="template_name_unique_per_type")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"

    def clean(self) -> None:
        from studio.engines import providers

        if self.engine == self.Engine.BUILTIN:
            return
        if not self.prompt.strip():
            raise ValidationError({"prompt": "An image-model template needs its instruction."})
        if self.engine == self.Engine.AUTO:
            if self.model:
                raise ValidationError(
                    {"model": "Leave it empty on the default provider, or pick an engine."}
                )
        elif providers.get(self.engine).model(self.model) is None:
            names = ", ".join(m.name for m in providers.get(self.engine).models)
            raise ValidationError({"model": f"This engine offers: {names}."})

    @property
    def uses_image_model(self) -> bool:
        return self.engine != self.Engine.BUILTIN

    @property
    def cost(self) -> int:
        """Credits per run: its own cost if set, else 1 (built-in) or its model's cost."""
        from studio.engines import providers

        if self.credit_cost:
            return self.credit_cost
        if not self.uses_image_model:
            return 1
        return providers.credit_cost(self.engine, self.model)

    def engine_unavailable_reason(self) -> str | None:
        from studio.engines import providers

        return providers.unavailable_reason(self.engine) if self.uses_image_model else None

    def offered_on(self, plan: Plan | None) -> bool:
        if plan is None:
            return False
        plan_ids = [p.pk for p in self.plans.all()]
        return (not plan_ids or plan.pk in plan_ids) and plan.allows_template_type(self.type)


_CLAIM_SQL = """
UPDATE studio_job SET status = %s, attempts = attempts + 1, started_at = %s, heartbeat_at = %s
WHERE id = %s AND attempts < %s AND (status = %s OR (status = %s AND heartbeat_at < %s))
RETURNING *
"""


class JobQuerySet(models.QuerySet["Job"]):
    """The job state machine's transitions that start from a query (see also Job.finish)."""

    def claim(self, job_id: uuid.UUID | str) -> Job | None:
        """queued → running for this worker, and the job as it now is; None if it is not
        there to run (another worker has it, it ended, it used its attempts, it is gone).
        One conditional UPDATE that returns the row, so one worker runs a job. A running job
        whose heartbeat stopped (its worker died) can be taken over.

        Written as SQL: the ORM's UPDATE and the SELECT after it were a third of a small job's
        time on the worker, most of it spent compiling the two queries."""
        now = timezone.now()
        stale = now - timedelta(seconds=settings.JOB_STALE_RUNNING_S)
        at = connection.ops.adapt_datetimefield_value
        pk = Job._meta.pk
        assert pk is not None
        params = [
            Job.Status.RUNNING,
            at(now),
            at(now),
            pk.get_db_prep_value(uuid.UUID(str(job_id)), connection),
            settings.JOB_MAX_ATTEMPTS,
            Job.Status.QUEUED,
            Job.Status.RUNNING,
            at(stale),
        ]
        return next(iter(self.raw(_CLAIM_SQL, params)), None)

    def requeue_failed(self, job_id: uuid.UUID) -> bool:
        """failed → queued, for a fresh set of attempts (an admin's retry)."""
        fresh = {"attempts": 0, "error_code": "", "error_message": "", "finished_at": None}
        return bool(
            self.filter(pk=job_id, status=Job.Status.FAILED).update(
                status=Job.Status.QUEUED, **fresh
            )
        )

    def insert_counting_active(self, job: Job, kept: JobInput | None = None) -> int:
        """Count the user's queued or running jobs and insert a new (queued) one, with its
        input's row if it has one, in one statement on PostgreSQL; return the count with the
        new job. Every submit does this under its balance lock, so concurrent submits cannot
        overrun the cap: the count reads every job committed before it, and not the one
        inserted with it, hence `+ 1`."""
        table = connection.ops.quote_name(Job._meta.db_table)
        count = inserts.after(
            f"SELECT count(*) FROM {table} WHERE user_id = %s AND status IN (%s, %s)",  # noqa: S608
            [job.user_id, Job.Status.QUEUED, Job.Status.RUNNING],
            *(job, kept) if kept else (job,),
        )
        assert count is not None  # a count is always one row
        return int(count[0]) + 1

    def next_finish_in(self, sample: int = 20) -> int:
        """Seconds until the first of these active jobs should be done: the median run time of
        the last `sample` finished ones (JOB_TYPICAL_S before there are any) less how long the
        earliest running one has run; at least 1. For Retry-After when the job cap is hit."""
        durations = sorted(
            (job.finished_at - job.started_at).total_seconds()
            for job in self.filter(status=Job.Status.SUCCEEDED, started_at__isnull=False)
            .exclude(finished_at=None)
            .only("started_at", "finished_at")
            .order_by("-finished_at")[:sample]
            if job.started_at and job.finished_at
        )
        typical = durations[len(durations) // 2] if durations else settings.JOB_TYPICAL_S
        first = (
            self.filter(status=Job.Status.RUNNING, started_at__isnull=False)
            .order_by("started_at")
            .values_list("started_at", flat=True)
            .first()
        )
        ran = (timezone.now() - first).total_seconds() if first else 0.0
        return max(1, min(math.ceil(typical - ran), settings.JOB_TIME_LIMIT_S))

    def stale(self) -> JobQuerySet:
        """Running jobs whose worker stopped marking them alive."""
        cutoff = timezone.now() - timedelta(seconds=settings.JOB_STALE_RUNNING_S)
        return self.filter(status=Job.Status.RUNNING, heartbeat_at__lt=cutoff)

    def take_lost(self, limit: int) -> list[Job]:
        """Jobs left queued long enough that their message may be lost, stamped as sent again
        now: a job waiting its turn in a long queue is resent at most once per
        JOB_RESEND_QUEUED_AFTER_S (a duplicate message is harmless: a job is claimed once).
        Loaded with what `Job.queue` reads."""
        now = timezone.now()
        before = now - timedelta(seconds=settings.JOB_RESEND_QUEUED_AFTER_S)
        with transaction.atomic():
            # Two sweeps at once (a second beat started by mistake) split the jobs between
            # them instead of both sending each.
            jobs = list(
                self.filter(status=Job.Status.QUEUED)
                .filter(Q(resent_at__lt=before) | Q(resent_at=None, created_at__lt=before))
                .order_by("created_at")
                .select_for_update(skip_locked=True)
                .only("pk", "kind", "params")[:limit]
            )
            self.filter(pk__in=[job.pk for job in jobs]).update(resent_at=now)
        return jobs


class Job(models.Model):
    """One generation or OCR run. Credits are reserved when it is accepted (billing.ledger).

    States: queued → running → succeeded | failed | cancelled; the transitions are
    JobQuerySet.claim / requeue_failed and Job.finish, and nothing else writes `status`."""

    class Kind(models.TextChoices):
        GENERATE = "generate", "Generate"
        OCR = "ocr", "OCR"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
    # What running and ending a job change: what its waiter reads back.
    RUN_FIELDS = (
        "status",
        "attempts",
        "started_at",
        "finished_at",
        "error_code",
        "error_message",
        "output_file",
        "result",
        "refunded_at",
    )

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs"
    )
    api_key = models.ForeignKey(
        "apikeys.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="jobs"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    template = models.ForeignKey(Template, on_delete=models.SET_NULL, null=True, blank=True)
    params = models.JSONField(default=dict, blank=True)
    input_file = models.CharField(max_length=200, blank=True)
    output_file = models.CharField(max_length=200, blank=True)
    result = models.JSONField(default=dict, blank=True)
    credits = models.PositiveIntegerField(default=1)
    attempts = models.PositiveSmallIntegerField(default=0)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Refreshed by the worker while the job runs (studio.tasks.heartbeat); stale = worker gone.
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When the sweeper last sent a queued job again (its first message may have been lost).
    resent_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When its credits were given back (studio.actions.refund_job; the ledger holds the entry).
    refunded_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The key-budget period its cost was counted in (apikeys.budget), to give it back there.
    budget_period_start = models.DateTimeField(null=True, blank=True, editable=False)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["user", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk}"

    @property
    def queue(self) -> str:
        """The Celery queue its run goes to: OCR and local image work are CPU work for prefork
        workers; a call to an image provider waits on the network, on a thread pool of its
        own, so that a slow provider never holds up the others' builtin jobs."""
        if self.kind == Job.Kind.OCR:
            return "ocr"
        return "upstream" if self.params.get("engine") else "images"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL

    @property
    def title(self) -> str:
        """What the job did, as the pages name it."""
        if self.template:
            return self.template.name
        return "OCR" if self.kind == self.Kind.OCR else "Text to image"

    @property
    def engine_name(self) -> str:
        """The engine that runs it: for image models, the provider chosen at accept time."""
        if self.kind == self.Kind.OCR:
            return "ocr"
        if "engine" in self.params:
            return str(self.params["engine"])
        return self.template.engine if self.template else Template.Engine.UPSTREAM

    @functools.cached_property
    def has_input(self) -> bool:
        """An input image is kept: in the files storage (`input_file`) or in its row (JobInput)."""
        return bool(self.input_file) or JobInput.objects.filter(job_id=self.pk).exists()

    @property
    def duration_s(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @property
    def is_refunded(self) -> bool:
        return self.refunded_at is not None

    @property
    def charged_credits(self) -> int:
        """What the job costs in the end: 0 once refunded."""
        return 0 if self.is_refunded else self.credits

    def finish(
        self, status: str, *, error_code: str = "", error_message: str = "", **fields: Any
    ) -> bool:
        """End the job, once: succeeded, failed or cancelled (cancelled only from queued).

        A failed or cancelled job is refunded in the same transaction as its state change, so
        nobody sees it failed but still charged, and a crash between the two leaves neither.
        The caller wakes the job's waiters (studio.waiting.finish does both). False if the
        job was already final (or, for a cancel, had started): then nothing changed.
        """
        from studio.actions import refund_job  # the workflow imports this module

        jobs = Job.objects.filter(pk=self.pk).exclude(status__in=self.FINAL)
        if status == self.Status.CANCELLED:
            jobs = jobs.filter(status=self.Status.QUEUED)
        finished_at = timezone.now()
        ended = {
            "status": status,
            "finished_at": finished_at,
            "error_code": error_code,
            "error_message": error_message[:500],
            **fields,
        }
        with transaction.atomic():
            if not jobs.update(**ended):
                return False
            if status != self.Status.SUCCEEDED:
                reason = f"Job {status}: {error_code}" if error_code else f"Job {status}"
                refund_job(self, reason)  # sets refunded_at on self too
            job_finished.send(sender=Job, job=self, status=status)
            metrics.after_commit(functools.partial(self._count_finished, status, finished_at))
        for name, value in ended.items():  # as written: no query to read the row back
            setattr(self, name, value)
        return True

    def _count_finished(self, status: str, finished_at: datetime) -> None:
        metrics.JOBS_FINISHED.labels(self.kind, status).inc()
        if self.created_at:
            seconds = (finished_at - self.created_at).total_seconds()
            metrics.JOB_DURATION.labels(self.kind, status).observe(seconds)


class JobInput(models.Model):
    """A small input image kept in the database with its job, inserted in the same statement
    (studio.storage.keep_input): up to JOB_INPUT_INLINE_MAX_BYTES. Making a file per job cost
    the async submit about a tenth of its throughput under load; larger inputs go to the job
    files storage (`Job.input_file`). Deleted with the job, or after the retention period."""

    job = models.OneToOneField(
        Job, on_delete=models.CASCADE, primary_key=True, related_name="inline_input"
    )
    data = models.BinaryField()
    extension = models.CharField(max_length=8)  # the client's format: png, jpg, webp, gif

    def __str__(self) -> str:
        return f"input of job {self.job_id}"


class IdempotencyKey(models.Model):
    """A client's `Idempotency-Key` for a submit: same key and body → the same job (24 h)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    job = models.ForeignKey(Job, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user")
        ]

    def __str__(self) -> str:
        return self.key
