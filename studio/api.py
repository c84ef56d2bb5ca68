"""/api/generate, /api/jobs and /api/templates."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import Router, Status
from ninja.params import functions as param
from pydantic import Field, model_validator

from apikeys.auth import ApiKeyAuth
from apikeys.models import Scope
from billing.models import plan_of
from nanostudio import keyset
from nanostudio.errors import ERROR_CODES, ApiError
from nanostudio.http import ApiRequest
from nanostudio.schemas import Body, Schema, envelope, errors, ok
from studio import actions, storage
from studio.engines import providers
from studio.idempotency import Replay, idempotent
from studio.models import Job, Template
from studio.waiting import wait_for

router = Router(tags=["jobs"])


class TemplateRef(Schema):
    name: str
    type: str


class JobError(Schema):
    code: str
    message: str


class JobOut(Schema):
    id: str
    kind: str
    status: str
    template: TemplateRef | None
    credits: int = Field(description="What the job cost: 0 once refunded (failed, cancelled).")
    refunded_credits: int = Field(description="Credits given back for this job.")
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    error: JobError | None
    output_url: str | None = Field(description="Absolute URL of the result image (Bearer key).")
    result: dict[str, Any]


class JobListOut(Schema):
    jobs: list[JobOut]
    next_cursor: str | None


class GenerateIn(Body):
    image: str | None = Field(
        default=None, description="base64 or a data URL (PNG, JPEG, WebP, GIF)"
    )
    template: str | None = Field(default=None, max_length=80)
    templateType: str | None = Field(default=None, max_length=40)
    prompt: str | None = Field(default=None, min_length=1, max_length=4000)
    model: str | None = Field(
        default=None, max_length=100, description="With a prompt: see GET /api/models."
    )
    size: Literal["256x256", "512x512", "1024x1024", "1024x1536", "1536x1024"] | None = Field(
        default=None, description="With a prompt; or `aspect_ratio`."
    )
    aspect_ratio: str | None = Field(
        default=None,
        pattern=r"^[1-9][0-9]?:[1-9][0-9]?$",
        description="With a prompt, e.g. `1:1`, `2:3`, `16:9` (GET /api/models: per model).",
    )

    webhook: str | None = Field(
        default=None,
        max_length=1000,
        description="An https URL told when this job ends (job.succeeded, job.failed, job.cancelled).",
    )

    @model_validator(mode="after")
    def template_or_prompt(self) -> GenerateIn:
        if self.prompt is None:
            missing = [
                name for name in ("image", "template", "templateType") if not getattr(self, name)
            ]
            if missing:
                raise ValueError(
                    f"Send `image`, `template` and `templateType` (missing: {', '.join(missing)}), or a `prompt`."
                )
            if self.model or self.size or self.aspect_ratio:
                raise ValueError(
                    "`model`, `size` and `aspect_ratio` go with a `prompt`; a template brings its own."
                )
        elif self.image or self.template:
            raise ValueError(
                "Send either a `prompt` (text to image) or `image` + `template`, not both."
            )
        return self


def job_out(job: Job, request: HttpRequest | None = None) -> dict[str, Any]:
    """The job as the API shows it; without a request (a webhook), links use SITE_URL."""
    return {
        "id": str(job.pk),
        "kind": job.kind,
        "status": job.status,
        "template": {"name": job.template.name, "type": job.template.type}
        if job.template
        else None,
        "credits": job.charged_credits,
        "refunded_credits": job.credits - job.charged_credits,
        "attempts": job.attempts,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "duration_s": job.duration_s,
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
        "output_url": _output_url(job, request) if job.output_file else None,
        "result": job.result,
    }


def _output_url(job: Job, request: HttpRequest | None) -> str:
    """Where the job's output is fetched. Reversed only for a job that has an output, which a
    submit's answer never has: each `reverse` costs 45 µs."""
    output = reverse("api:job_output", args=[job.pk])
    return request.build_absolute_uri(output) if request else settings.SITE_URL.rstrip("/") + output


def _get_job_for_user(request: ApiRequest, job_id: uuid.UUID) -> Job:
    job = get_object_or_404(Job.objects.select_related("template"), pk=job_id, user=request.user)
    request.api.job_id = job.pk
    return job


def _submit(request: ApiRequest, accept: Callable[[], actions.Accepted]) -> Status[dict[str, Any]]:
    """Accept a job under the request's Idempotency-Key (a repeat gets the original job)."""
    key = request.headers.get("Idempotency-Key")
    try:
        with idempotent(request.user, key, request.body, request.path) as remember:
            accepted = accept()
            remember(accepted.job)
    except Replay as replay:
        accepted = actions.Accepted.replay(replay.job)
    return _respond(request, accepted)


def _respond(request: ApiRequest, accepted: actions.Accepted) -> Status[dict[str, Any]]:
    """Wait for the job unless the client asked not to; 200 when done, else 202 + Location.
    A job that failed or was cancelled is an error answer with its code, never a success."""
    call, job = request.api, accepted.job
    call.job_id = job.pk
    call.replayed = accepted.replayed
    if not accepted.replayed:  # the balance after the charge
        call.credits_remaining = "unlimited" if accepted.remaining is None else accepted.remaining
    if "respond-async" not in request.headers.get("Prefer", ""):
        job = wait_for(job, settings.JOB_WAIT_S)
    if job.status in (Job.Status.FAILED, Job.Status.CANCELLED):
        if not accepted.replayed and accepted.remaining is not None:  # refunded meanwhile
            call.credits_remaining = accepted.remaining + job.credits
        raise job_failed(job, request)
    call.credits_charged = accepted.charged  # what this request cost, for the usage event
    if job.is_final:
        return Status(200, ok(job_out(job, request)))
    call.location = reverse("api:get_job", args=[job.pk])
    return Status(202, ok(job_out(job, request)))


def job_failed(job: Job, request: HttpRequest) -> ApiError:
    """The answer to a submit whose job failed or was cancelled: its own error code and
    status (ENGINE_ERROR 502, TIMEOUT 504, CANCELLED 409, …), the job, and the refund."""
    code = job.error_code if job.error_code in ERROR_CODES else "ENGINE_ERROR"
    message = job.error_message or "The job was cancelled before it ran."
    return ApiError(
        code,
        f"{message} Its credits were refunded.",
        {"job": job_out(job, request), "refunded": job.is_refunded},
    )


@router.post(
    "/generate",
    auth=ApiKeyAuth(Scope.GENERATE),
    response={200: envelope(JobOut), 202: envelope(JobOut), **errors(402, 409, 413, 422, 502, 504)},
)
def generate(request: ApiRequest, payload: GenerateIn) -> Status[dict[str, Any]]:
    """Run a template on an image, or make an image from a `prompt` on an image model.

    Waits for the result (up to 30 s) and answers 200 with the finished job; with
    `Prefer: respond-async` answers 202 at once, with `Location: /api/jobs/{id}`.
    An `Idempotency-Key` header makes retries safe: the same key and body get the same job.
    """

    def accept() -> actions.Accepted:
        template = None
        if payload.prompt is None:
            # template_or_prompt() made sure both are there without a prompt.
            assert payload.template and payload.templateType
            template = actions.find_template(payload.template, payload.templateType)
        params = payload.model_dump(include={"prompt", "model", "size", "aspect_ratio"})
        return actions.submit_generate(
            request.user,
            request.auth,
            image=payload.image,
            template=template,
            params=params,
            webhook=payload.webhook,
        )

    return _submit(request, accept)


class OcrIn(Body):
    image: str = Field(description="base64 or a data URL (PNG, JPEG, WebP, GIF)")
    language: str = Field(default="auto", pattern=r"^(auto|[a-z]{2,3}(_[a-z]{3,4})?)$")
    outputFormat: Literal["text", "json"] = "text"
    webhook: str | None = Field(
        default=None, max_length=1000, description="An https URL told when this job ends."
    )


@router.post(
    "/ocr",
    auth=ApiKeyAuth(Scope.OCR),
    response={200: envelope(JobOut), 202: envelope(JobOut), **errors(402, 409, 413, 422, 502, 504)},
)
def ocr(request: ApiRequest, payload: OcrIn) -> Status[dict[str, Any]]:
    """Read the text in an image. `result.text`, and with `outputFormat: json` also
    `result.lines` (text, confidence, box). Waits like /api/generate; same headers."""
    return _submit(
        request,
        lambda: actions.submit_ocr(
            request.user,
            request.auth,
            image=payload.image,
            language=payload.language,
            output_format=payload.outputFormat,
            webhook=payload.webhook,
        ),
    )


CURSOR_DESCRIPTION = (
    "Opaque: pass `next_cursor` from the previous page back unchanged. "
    "Anything else is 400 VALIDATION_ERROR."
)


@router.get(
    "/jobs",
    auth=ApiKeyAuth(Scope.JOBS_READ),
    response={200: envelope(JobListOut), **errors()},
)
def list_jobs(
    request: ApiRequest,
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = None,
    kind: Literal["generate", "ocr"] | None = None,
    cursor: str | None = param.Query(
        None, description=CURSOR_DESCRIPTION, min_length=1, max_length=200
    ),
    limit: int = param.Query(20, ge=1, le=100),
) -> dict[str, Any]:
    """Your jobs, newest first. Pass `next_cursor` back as `cursor` for the next page."""
    jobs = (
        Job.objects.filter(user=request.user)
        .select_related("template")
        .order_by("-created_at", "-id")
    )
    if status:
        jobs = jobs.filter(status=status)
    if kind:
        jobs = jobs.filter(kind=kind)
    try:
        page, next_cursor = keyset.page(jobs, cursor, limit, uuid.UUID)
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors too
        raise keyset.bad_cursor() from None
    return ok({"jobs": [job_out(job, request) for job in page], "next_cursor": next_cursor})


@router.get(
    "/jobs/{uuid:job_id}",
    auth=ApiKeyAuth(Scope.JOBS_READ),
    response={200: envelope(JobOut), **errors(404)},
)
def get_job(request: ApiRequest, job_id: uuid.UUID) -> dict[str, Any]:
    return ok(job_out(_get_job_for_user(request, job_id), request))


@router.get(
    "/jobs/{uuid:job_id}/output",
    auth=ApiKeyAuth(Scope.JOBS_READ),
    response={200: None, 302: None, **errors(404)},
)
def job_output(request: ApiRequest, job_id: uuid.UUID) -> HttpResponseBase:
    """The result image (PNG), for the job's owner only: the file itself, or, where the
    server keeps files in a bucket, a redirect (302) to a URL valid for a few minutes (send
    no key there; curl -L and requests follow it)."""
    job = _get_job_for_user(request, job_id)
    try:
        if not job.output_file:
            raise FileNotFoundError
        return storage.download(job.output_file, f"{job.pk}.png")
    except FileNotFoundError:
        raise ApiError("NOT_FOUND", "This job has no output (yet, or any more).") from None


@router.post(
    "/jobs/{uuid:job_id}/cancel",
    auth=ApiKeyAuth(Scope.GENERATE, Scope.OCR),
    response={200: envelope(JobOut), **errors(404, 409)},
)
def cancel_job(request: ApiRequest, job_id: uuid.UUID) -> dict[str, Any]:
    """Cancel a job that has not started yet; its credits are refunded."""
    job = _get_job_for_user(request, job_id)
    if not actions.cancel(job):
        raise ApiError(
            "JOB_NOT_CANCELLABLE",
            f"The job is {job.status}; only queued jobs can be cancelled.",
            {"status": job.status},
        )
    return ok(job_out(job, request))


class TemplateOut(Schema):
    name: str
    type: str
    description: str
    credit_cost: int = Field(description="Credits per run (on image models, by the model).")
    engine: str = Field(description="builtin, or the image model's provider (auto = default).")
    available: bool
    unavailable_reason: str | None


class TemplateGroupOut(Schema):
    type: str
    templates: list[TemplateOut]


class TemplateCatalogOut(Schema):
    types: list[TemplateGroupOut]


@router.get("/templates", response={200: envelope(TemplateCatalogOut), **errors()})
def list_templates(request: ApiRequest) -> dict[str, Any]:
    """The catalogue, grouped by type, with whether each template is available to you."""
    groups = Template.objects.catalogue(plan_of(request.user))
    return ok(
        {
            "types": [
                {
                    "type": name,
                    "templates": [
                        {
                            "name": t.name,
                            "type": t.type,
                            "description": t.description,
                            "credit_cost": t.cost,
                            "engine": t.engine,
                            "available": t.unavailable_reason is None,
                            "unavailable_reason": t.unavailable_reason,
                        }
                        for t in templates
                    ],
                }
                for name, templates in groups
            ]
        }
    )


class ModelOut(Schema):
    name: str = Field(description="Send as `model` with a `prompt`.")
    label: str
    provider: str
    credit_cost: int
    default: bool = Field(description="Used when a prompt names no model.")
    aspect_ratios: list[str]
    sizes: list[str]


class ModelListOut(Schema):
    models: list[ModelOut]


@router.get("/models", response={200: envelope(ModelListOut), **errors()})
def list_models(request: ApiRequest) -> dict[str, Any]:
    """The image models this server offers for `prompt` requests, with their credit cost; the
    default first. Empty while no image model is configured."""
    default = providers.default()
    models = []
    for model in providers.offered():
        provider = providers.get(model.provider)
        models.append(
            {
                "name": model.name,
                "label": model.label,
                "provider": model.provider,
                "credit_cost": model.credit_cost,
                "default": provider == default and model.default,
                "aspect_ratios": list(provider.aspect_ratios()),
                "sizes": list(provider.sizes()),
            }
        )
    return ok({"models": models})
