"""Studio (run a template or OCR on an upload) and Jobs (history, live status, files)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import uuid
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from billing.models import plan_of
from nanostudio.http import AuthedRequest
from studio import actions, engines, storage
from studio.engines import builtin
from studio.forms import GenerateForm, OcrForm
from studio.models import Job, Template
from studio.rejections import Rejected

if TYPE_CHECKING:
    from accounts.models import User

PREVIEW_SAMPLE = settings.BASE_DIR / "static" / "img" / "sample.jpg"
JOBS_PAGE_SIZE = 25


def _gallery(user: User) -> list[dict[str, Any]]:
    groups = Template.objects.catalogue(plan_of(user))
    return [{"type": name, "templates": templates} for name, templates in groups]


@login_required
def studio(request: AuthedRequest) -> HttpResponse:
    tab = "ocr" if request.GET.get("tab") == "ocr" else "generate"
    return render(
        request,
        "studio/studio.html",
        {
            "gallery": _gallery(request.user),
            "tab": tab,
            "form": GenerateForm(),
            "ocr_form": OcrForm(),
        },
    )


@login_required
@require_POST
def run(request: AuthedRequest) -> HttpResponse:
    """Submit from the Studio: the same acceptance path as the API, with a session."""
    is_ocr = request.POST.get("kind") == "ocr"
    form = (OcrForm if is_ocr else GenerateForm)(request.POST, request.FILES)
    if form.is_valid():
        try:
            if is_ocr:
                accepted = actions.submit_ocr(
                    request.user,
                    None,
                    image=form.image_base64(),
                    language=form.cleaned_data["language"],
                    output_format=form.cleaned_data["output_format"],
                )
            else:
                accepted = actions.submit_generate(
                    request.user,
                    None,
                    image=form.image_base64(),
                    template=form.cleaned_data["template"],
                    params={},
                )
        except Rejected as error:
            messages.error(request, error.message)
        else:
            return redirect("studio:job", job_id=accepted.job.pk)
    else:
        for field_errors in form.errors.values():
            for message in field_errors:
                messages.error(request, str(message))
    context = {
        "gallery": _gallery(request.user),
        "tab": "ocr" if is_ocr else "generate",
        "form": form if not is_ocr else GenerateForm(),
        "ocr_form": form if is_ocr else OcrForm(),
    }
    return render(request, "studio/studio.html", context, status=422)


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
def job_file(request: AuthedRequest, job_id: uuid.UUID, which: str) -> FileResponse:
    job = _get_job_for_user(request, job_id)
    relative = job.output_file if which == "output" else job.input_file
    if not relative or not storage.path_of(relative).exists():
        raise Http404
    path = storage.path_of(relative)
    # FileResponse sets the type from the name: inputs keep the client's format.
    return FileResponse(
        path.open("rb"),
        as_attachment="download" in request.GET,
        filename=f"nano-{str(job.pk)[:8]}-{which}{path.suffix}",
    )


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
