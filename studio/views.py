"""Studio (run a template or OCR on an upload) and Jobs (history, live status, files)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import uuid
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from billing.credits import credit_summary
from billing.models import plan_of
from nanostudio.http import AuthedRequest
from studio import actions, engines, storage
from studio.engines import builtin, providers
from studio.forms import GenerateForm, OcrForm, PromptForm
from studio.models import Job, Template
from studio.rejections import Rejected

if TYPE_CHECKING:
    from accounts.models import User

PREVIEW_SAMPLE = settings.BASE_DIR / "static" / "img" / "sample.jpg"
JOBS_PAGE_SIZE = 25


def _gallery(user: User) -> list[dict[str, Any]]:
    groups = Template.objects.catalogue(plan_of(user))
    return [{"type": name, "templates": templates} for name, templates in groups]


TABS = ("generate", "prompt", "ocr")
# The API's error messages name fields as `image`; the page speaks of them in words.
_FIELD_WORDS = {"`image`": "the image", "`template`": "the template", "`prompt`": "the prompt"}


def plain(message: str) -> str:
    """An API error message in plain words, for the Studio page."""
    for name, words in _FIELD_WORDS.items():
        message = message.replace(name, words)
    message = message.replace("`", "")
    return message[:1].upper() + message[1:]


def _studio_page(
    request: AuthedRequest,
    tab: str,
    forms: dict[str, Any] | None = None,
    kept: tuple[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The Studio with its three forms, any of them re-shown with the user's input."""
    user = request.user
    forms = forms or {}
    gallery = _gallery(user)
    prompt_form = forms.get("prompt") or PromptForm()
    balance = credit_summary(user)["remaining"]  # None: unlimited
    picked = prompt_form["model"].value() or ""
    models = prompt_form.models
    prompt_cost = next((m.credit_cost for m in models if m.name == picked), None) or (
        providers.credit_cost(providers.AUTO)
    )
    context = {
        "tab": tab,
        "gallery": gallery,
        "unavailable_reasons": sorted(
            {t.unavailable_reason for g in gallery for t in g["templates"] if t.unavailable_reason}
        ),
        "form": forms.get("generate") or GenerateForm(user_id=user.pk),
        "ocr_form": forms.get("ocr") or OcrForm(user_id=user.pk),
        "prompt_form": prompt_form,
        "balance": balance,
        "prompt_cost": prompt_cost,
        "prompt_left": None if balance is None else balance - prompt_cost,
        "ocr_cost": actions.OCR_CREDIT_COST,
        "ocr_left": None if balance is None else balance - actions.OCR_CREDIT_COST,
        "prompt_unavailable": providers.unavailable_reason(providers.AUTO),
        "kept_token": kept[0] if kept else "",
        "kept_name": kept[1] if kept else "",
    }
    return render(request, "studio/studio.html", context, status=status)


@login_required
def studio(request: AuthedRequest) -> HttpResponse:
    tab = request.GET.get("tab", "")
    return _studio_page(request, tab if tab in TABS else "generate")


@login_required
@require_POST
def run(request: AuthedRequest) -> HttpResponse:
    """Submit from the Studio: the same acceptance path as the API, with a session."""
    user = request.user
    kind = request.POST.get("kind", "")
    tab = kind if kind in TABS else "generate"
    form: GenerateForm | OcrForm | PromptForm
    if tab == "prompt":
        form = PromptForm(request.POST)
    elif tab == "ocr":
        form = OcrForm(request.POST, request.FILES, user_id=user.pk)
    else:
        form = GenerateForm(request.POST, request.FILES, user_id=user.pk)
    bad_image = False  # a file that cannot be used is not kept for the retry
    if form.is_valid():
        try:
            accepted = _submit(user, form)
        except Rejected as error:
            bad_image = error.code in ("INVALID_IMAGE", "PAYLOAD_TOO_LARGE")
            messages.error(request, plain(error.message))
        else:
            return redirect("studio:job", job_id=accepted.job.pk)
    else:
        bad_image = "image" in form.errors
        for field_errors in form.errors.values():
            for message in field_errors:
                messages.error(request, plain(str(message)))
    kept = None
    if isinstance(form, GenerateForm | OcrForm) and not bad_image and (token := form.keep()):
        kept = (token, form.filename)
    return _studio_page(request, tab, {tab: form}, kept, status=422)


def _submit(user: User, form: GenerateForm | OcrForm | PromptForm) -> actions.Accepted:
    data = form.cleaned_data
    if isinstance(form, PromptForm):
        params = {k: data[k] or None for k in ("prompt", "model", "aspect_ratio")}
        return actions.submit_generate(user, None, image=None, template=None, params=params)
    if isinstance(form, OcrForm):
        return actions.submit_ocr(
            user,
            None,
            image=form.image_base64(),
            language=data["language"],
            output_format=data["output_format"],
        )
    return actions.submit_generate(
        user, None, image=form.image_base64(), template=data["template"], params={}
    )


def _get_job_for_user(request: AuthedRequest, job_id: uuid.UUID) -> Job:
    return get_object_or_404(Job.objects.select_related("template"), pk=job_id, user=request.user)


@login_required
@require_GET
@vary_on_headers("HX-Request")  # the page, or its partial for htmx
def job_detail(request: AuthedRequest, job_id: uuid.UUID) -> HttpResponse:
    job = _get_job_for_user(request, job_id)
    template = "studio/job_detail.html#status" if request.htmx else "studio/job_detail.html"
    return render(request, template, {"job": job})


@login_required
def job_file(request: AuthedRequest, job_id: uuid.UUID, which: str) -> HttpResponseBase:
    job = _get_job_for_user(request, job_id)
    # The type comes from the name: inputs keep the client's format.
    stem, attachment = f"nano-{str(job.pk)[:8]}-{which}", "download" in request.GET
    try:
        if which != "output":
            return storage.download_input(job, stem, attachment=attachment)
        if not job.output_file:
            raise FileNotFoundError
        suffix = PurePosixPath(job.output_file).suffix
        return storage.download(job.output_file, f"{stem}{suffix}", attachment=attachment)
    except FileNotFoundError:
        raise Http404 from None


@login_required
@require_GET
@vary_on_headers("HX-Request")  # the page, or its partial for htmx
def jobs(request: AuthedRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    queryset = Job.objects.filter(user=request.user).select_related("template")
    if status in Job.Status.values:
        queryset = queryset.filter(status=status)
    page = Paginator(queryset, JOBS_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "status": status, "statuses": Job.Status.choices}
    template = "studio/jobs.html#job-table" if request.htmx else "studio/jobs.html"
    return render(request, template, context)


@login_required
@require_POST
def cancel(request: AuthedRequest, job_id: uuid.UUID) -> HttpResponse:
    job = _get_job_for_user(request, job_id)
    if actions.cancel(job):
        messages.success(request, "Job cancelled; its credits are back.")
    else:
        messages.error(request, "The job has already started, so it cannot be cancelled.")
    return redirect("studio:job", job_id=job.pk)


def template_preview(request: HttpRequest, template_id: int) -> HttpResponse:
    """A template applied to our sample photo (cached); upstream templates show the sample."""
    template = get_object_or_404(Template.objects.enabled(), pk=template_id)
    version = hashlib.sha256(json.dumps(template.parameters, sort_keys=True).encode()).hexdigest()[
        :12
    ]
    key = f"template-preview:{template.pk}:{version}"
    png = cache.get(key)
    if png is None:
        from PIL import Image

        image = Image.open(PREVIEW_SAMPLE).convert("RGB")
        image.thumbnail((240, 240))
        if template.engine == Template.Engine.BUILTIN:
            with contextlib.suppress(engines.EngineError):
                image = builtin.run(template, image, {}).image or image
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        png = buffer.getvalue()
        cache.set(key, png, 24 * 3600)
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "public, max-age=3600"
    return response
