"""Accepting jobs: validate, check the plan, reserve credits, create the row, enqueue. All or
nothing: a rejected request costs nothing and leaves no job behind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from apikeys import budget
from billing.ledger import InsufficientCredits, refund, reserve
from billing.models import CreditBalance, plan_of
from nanostudio import outbound
from nanostudio.schemas import utc_timestamp
from studio import catalogue, storage, waiting
from studio.engines import providers
from studio.images import check_image
from studio.models import Job, Template
from studio.rejections import Rejected
from usage import metering

if TYPE_CHECKING:
    from accounts.models import User
    from apikeys.models import ApiKey
    from billing.models import Plan
    from studio.images import CheckedImage

PLAN_LACKS_FEATURE = "Your plan does not include this feature."
PLAN_LACKS_WEBHOOKS = "Your plan does not include this feature (webhooks)."
OCR_CREDIT_COST = 1


def insufficient_credits(error: InsufficientCredits) -> Rejected:
    return Rejected(
        "INSUFFICIENT_CREDITS",
        f"This job needs {error.required} credit(s); you have {error.remaining}.",
        {
            "required": error.required,
            "remaining": error.remaining,
            "resets_at": utc_timestamp(error.resets_at) if error.resets_at else None,
        },
    )


def key_budget_exceeded(spent: budget.BudgetExceeded) -> Rejected:
    return Rejected(
        "KEY_BUDGET_EXCEEDED",
        f"This API key's budget of {spent.cap} credit(s) for this period is spent "
        f"({spent.spent} used); it resets at {utc_timestamp(spent.resets_at)}. "
        "Nothing was charged.",
        {"cap": spent.cap, "spent": spent.spent, "resets_at": utc_timestamp(spent.resets_at)},
    )


def find_template(name: str, template_type: str) -> Template:
    template = catalogue.find(name, template_type)
    if template is None:
        raise Rejected(
            "VALIDATION_ERROR",
            f"There is no template “{name}” of type “{template_type}”. GET /api/templates lists them.",
            {"fields": {"template": "Unknown template for this type."}},
        )
    return template


@dataclass(frozen=True)
class Accepted:
    """A submit's outcome: the job, what accepting it charged, and the balance after (None on
    an unlimited plan). A replay of an earlier submit (Idempotency-Key) charged nothing now."""

    job: Job
    charged: int
    remaining: int | None
    replayed: bool = False

    @classmethod
    def replay(cls, job: Job) -> Accepted:
        return cls(job=job, charged=0, remaining=None, replayed=True)


def submit_generate(
    user: User,
    api_key: ApiKey | None,
    *,
    image: str | None,
    template: Template | None,
    params: dict[str, Any],
    webhook: str | None = None,
) -> Accepted:
    """A template on an image, or (template None) a text-to-image `params["prompt"]` with
    optional `model`, `size` or `aspect_ratio`. `webhook`: a URL told when the job ends."""
    plan = plan_of(user)
    if plan is None or not plan.allows_job_kind(Job.Kind.GENERATE):
        raise Rejected("INSUFFICIENT_PERMISSIONS", PLAN_LACKS_FEATURE, {"feature": "generate"})
    if template is not None and not template.offered_on(plan):
        raise Rejected(
            "INSUFFICIENT_PERMISSIONS",
            PLAN_LACKS_FEATURE,
            {"feature": f"template:{template.type}"},
        )
    if template is not None and not template.uses_image_model:
        job_params: dict[str, Any] = {}
        cost = template.cost
    else:
        job_params, cost = route_to_image_model(template, params)
    job_params |= job_webhook(plan, webhook)
    checked = check_image(image) if image is not None else None
    return _accept(user, api_key, Job.Kind.GENERATE, template, job_params, checked, cost, plan)


def job_webhook(plan: Plan, url: str | None) -> dict[str, str]:
    """A job's own webhook URL, as job params, if the plan has webhooks and the URL may be
    called (nanostudio.outbound); Rejected if not."""
    if not url:
        return {}
    if not plan.allows_webhooks():
        raise Rejected(
            "INSUFFICIENT_PERMISSIONS",
            PLAN_LACKS_WEBHOOKS,
            {"feature": "webhooks"},
        )
    try:
        outbound.check_url(url)
    except outbound.UnsafeUrl as exc:
        raise Rejected("VALIDATION_ERROR", str(exc), {"fields": {"webhook": str(exc)}}) from None
    return {"webhook": url.strip()}


def route_to_image_model(
    template: Template | None, request: dict[str, Any]
) -> tuple[dict[str, Any], int]:
    """The provider, model and shape a job on an image model runs with (kept in its params,
    so the worker runs what was priced), and its cost. Rejected if it cannot run here."""
    engine = template.engine if template else providers.AUTO
    provider = providers.resolve(engine)
    reason = providers.why_not(provider)
    if reason or provider is None:
        what = "this template" if template else "text to image"
        raise Rejected(
            "ENGINE_UNAVAILABLE",
            f"The image model for {what} is not configured here. {reason} Nothing was charged.",
            {"engine": engine},
            headers={"Retry-After": "60"},
        )
    if template is not None:
        chosen = provider.model(template.model)
        if chosen is None:
            raise Rejected(
                "ENGINE_UNAVAILABLE",
                "This template's model is not offered on this server. Nothing was charged.",
                {"engine": engine, "model": template.model},
            )
        routed = {"engine": provider.name, "model": chosen.name}
        return routed, template.credit_cost or chosen.credit_cost
    offered = providers.offered()
    chosen = provider.default_model
    if request.get("model"):
        found = next((m for m in offered if m.name == request["model"]), None)
        if found is None:
            names = [m.name for m in offered]
            raise Rejected(
                "VALIDATION_ERROR",
                f"There is no image model “{request['model']}” here. Available: "
                f"{', '.join(names)} (GET /api/models lists them with their cost).",
                {"fields": {"model": "Unknown image model."}, "models": names},
            )
        chosen, provider = found, providers.get(found.provider)
    try:
        shape = provider.shape(request.get("size"), request.get("aspect_ratio"))
    except ValueError as exc:
        field = "aspect_ratio" if request.get("aspect_ratio") else "size"
        raise Rejected(
            "VALIDATION_ERROR", f"{exc} ({chosen.name})", {"fields": {field: str(exc)}}
        ) from None
    routed = {"engine": provider.name, "model": chosen.name, "prompt": request["prompt"]}
    return routed | shape, chosen.credit_cost


def submit_ocr(
    user: User,
    api_key: ApiKey | None,
    *,
    image: str,
    language: str,
    output_format: str,
    webhook: str | None = None,
) -> Accepted:
    from studio.engines import ocr

    plan = plan_of(user)
    if plan is None or not plan.allows_job_kind(Job.Kind.OCR):
        raise Rejected("INSUFFICIENT_PERMISSIONS", PLAN_LACKS_FEATURE, {"feature": "ocr"})
    if not ocr.available():
        raise Rejected(
            "ENGINE_UNAVAILABLE",
            "OCR is not available right now. Nothing was charged.",
            {"engine": "ocr"},
            headers={"Retry-After": "60"},
        )
    if not ocr.supports(language):
        readable = ", ".join(ocr.languages())
        raise Rejected(
            "VALIDATION_ERROR",
            f"No OCR engine here reads “{language}”. Available: {readable}.",
            {"fields": {"language": "Unsupported language."}},
        )
    checked = check_image(image)
    params = {"language": language, "outputFormat": output_format} | job_webhook(plan, webhook)
    return _accept(user, api_key, Job.Kind.OCR, None, params, checked, OCR_CREDIT_COST, plan)


def _accept(
    user: User,
    api_key: ApiKey | None,
    kind: str,
    template: Template | None,
    params: dict[str, Any],
    image: CheckedImage | None,
    cost: int,
    plan: Plan,
) -> Accepted:
    from studio.tasks import enqueue

    job = Job(user=user, api_key=api_key, kind=kind, template=template, params=params, credits=cost)
    # A small input is a row written with the job; a large one a file, written before the
    # transaction so that the locked part below stays short.
    kept = storage.keep_input(job, image) if image is not None else None
    try:
        with transaction.atomic():
            try:  # the key's own cap first: one conditional upsert, undone if the rest fails
                job.budget_period_start = budget.charge(api_key, cost)
            except budget.BudgetExceeded as spent:
                raise key_budget_exceeded(spent) from None
            try:
                # Locks the user's balance row until commit (its debit names the job, which is
                # written next: the foreign key is checked at commit)...
                charge = reserve(user, cost, job, savepoint=False)
            except InsufficientCredits as error:
                raise insufficient_credits(error) from None
            if plan.is_unlimited:  # ...which reserve() does not touch on unlimited plans
                CreditBalance.objects.select_for_update().filter(user=user).first()
            # Counted under that lock, so concurrent submits cannot overrun the cap.
            running = Job.objects.insert_counting_active(job, kept)
            if running > plan.max_concurrent_jobs:
                retry_after = Job.objects.filter(user=user).next_finish_in()
                raise Rejected(
                    "TOO_MANY_CONCURRENT_JOBS",
                    f"Your plan runs {plan.max_concurrent_jobs} jobs at a time; one of yours "
                    f"should finish in about {retry_after} s.",
                    {"limit": plan.max_concurrent_jobs, "retry_after": retry_after},
                    headers={"Retry-After": str(retry_after)},
                )
            transaction.on_commit(lambda: enqueue(job))
    except BaseException:
        storage.delete(job.input_file)
        raise
    # `charged` is the job's cost, also on unlimited plans: usage counts what was used.
    return Accepted(job=job, charged=cost, remaining=charge.remaining)


def refund_job(job: Job, reason: str) -> bool:
    """Give a job's credits back and take them off the usage numbers of the request that was
    charged for it, together. True if this call refunded (a job is refunded at most once)."""
    with transaction.atomic():
        refunded = refund(job, reason)
        if refunded:
            metering.uncharge(job.pk)
            if job.api_key_id and job.budget_period_start:
                budget.give_back(job.api_key_id, job.budget_period_start, job.credits)
            job.refunded_at = timezone.now()
            Job.objects.filter(pk=job.pk).update(refunded_at=job.refunded_at)
    return refunded


def cancel(job: Job) -> bool:
    """Cancel a queued job and refund it. False if it had already started or finished."""
    cancelled = waiting.finish(
        job, Job.Status.CANCELLED, error_code="CANCELLED", error_message="Cancelled before it ran."
    )
    if not cancelled:
        job.refresh_from_db()
    return cancelled
