"""Settings → Webhooks (endpoints and their delivery logs) and Settings → Notifications."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from nanostudio.http import AuthedRequest
from webhooks import service
from webhooks.forms import EndpointForm, NotificationsForm, RollForm
from webhooks.models import EVENTS, Delivery, Endpoint, NotificationSettings

LOG_SIZE = 50


def _endpoint(request: AuthedRequest, endpoint_id: uuid.UUID) -> Endpoint:
    return get_object_or_404(Endpoint, pk=endpoint_id, user=request.user)


@login_required
@never_cache
def endpoint_list(request: AuthedRequest) -> HttpResponse:
    refusal = service.plan_refusal(request.user)
    form = EndpointForm(request.POST or None)
    status = 200
    if request.method == "POST" and not refusal:
        if form.is_valid():
            data = form.cleaned_data
            endpoint, secret = service.create_endpoint(
                request.user,
                url=data["url"],
                description=data["description"],
                events=data["events"],
                enabled=True,
            )
            return _detail(request, endpoint, secret=secret, status=201)
        status = 422
    context = {
        "endpoints": Endpoint.objects.filter(user=request.user),
        "form": form,
        "refusal": refusal,
        "events": EVENTS,
    }
    return render(request, "webhooks/endpoint_list.html", context, status=status)


def _detail(
    request: AuthedRequest,
    endpoint: Endpoint,
    *,
    secret: str = "",
    form: EndpointForm | None = None,
    status: int = 200,
) -> HttpResponse:
    deliveries = endpoint.deliveries.prefetch_related("tries")[:LOG_SIZE]
    context = {
        "endpoint": endpoint,
        "secret": secret,
        "form": form
        or EndpointForm(
            initial={
                "url": endpoint.url,
                "description": endpoint.description,
                "events": endpoint.events,
            }
        ),
        "roll_form": RollForm(),
        "deliveries": deliveries,
        "pending": any(d.status == Delivery.Status.PENDING for d in deliveries),
    }
    template = "webhooks/endpoint_detail.html"
    if request.htmx and request.GET.get("part") == "log":
        template += "#delivery-log"
    return render(request, template, context, status=status)


@login_required
@never_cache
@vary_on_headers("HX-Request")
def endpoint_detail(request: AuthedRequest, endpoint_id: uuid.UUID) -> HttpResponse:
    endpoint = _endpoint(request, endpoint_id)
    if request.method == "POST":
        form = EndpointForm(request.POST)
        if not form.is_valid():
            return _detail(request, endpoint, form=form, status=422)
        service.update_endpoint(endpoint, **form.cleaned_data)
        messages.success(request, "Endpoint saved.")
        return redirect("webhooks:endpoint", endpoint_id=endpoint.pk)
    return _detail(request, endpoint)


@login_required
@require_POST
def endpoint_action(request: AuthedRequest, endpoint_id: uuid.UUID, action: str) -> HttpResponse:
    endpoint = _endpoint(request, endpoint_id)
    if action == "roll":
        form = RollForm(request.POST)
        if form.is_valid():
            secret = endpoint.roll(form.cleaned_data["grace"])
            return _detail(request, endpoint, secret=secret)
    elif action == "test":
        with transaction.atomic():
            service.send_test(endpoint)
        messages.success(request, "Test event sent: it appears in the delivery log below.")
    elif action in ("enable", "disable"):
        service.update_endpoint(endpoint, enabled=action == "enable")
        messages.success(request, f"Endpoint {action}d.")
    elif action == "delete":
        endpoint.delete()
        messages.success(request, f"Endpoint {endpoint.url} deleted.")
        return redirect("webhooks:list")
    return redirect("webhooks:endpoint", endpoint_id=endpoint.pk)


@login_required
@require_POST
def delivery_resend(
    request: AuthedRequest, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> HttpResponse:
    endpoint = _endpoint(request, endpoint_id)
    delivery = get_object_or_404(Delivery, pk=delivery_id, endpoint=endpoint)
    with transaction.atomic():
        service.resend(delivery)
    messages.success(request, f"Sending {delivery.event} again ({delivery.message_id}).")
    return redirect("webhooks:endpoint", endpoint_id=endpoint.pk)


@login_required
@never_cache
def notifications(request: AuthedRequest) -> HttpResponse:
    prefs, _ = NotificationSettings.objects.get_or_create(user=request.user)
    form = NotificationsForm(request.POST or None, instance=prefs)
    if request.method == "POST":
        if form.is_valid():
            form.save()
            messages.success(request, "Notification settings saved.")
            return redirect("webhooks:notifications")
        return render(request, "webhooks/notifications.html", {"form": form}, status=422)
    return render(request, "webhooks/notifications.html", {"form": form})
