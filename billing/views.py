from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from billing.credits import credit_summary
from billing.models import LedgerEntry, Plan, UpgradeRequest
from nanostudio.http import AuthedRequest

if TYPE_CHECKING:
    from accounts.models import User

LEDGER_PAGE_SIZE = 25


def billing_context(user: User) -> dict[str, Any]:
    """Plan, credits and progress as the dashboard and billing page show them."""
    subscription = getattr(user, "subscription", None)
    credits = credit_summary(user)
    allowance = credits["monthly_allowance"]
    remaining = credits["remaining"]
    percent = None
    if allowance and remaining is not None:
        percent = max(0, min(100, round(100 * remaining / allowance)))
    return {"subscription": subscription, "credits": credits, "credits_percent": percent}


@login_required
@require_GET
@vary_on_headers("HX-Request")  # the page, or its partial for htmx
def billing(request: AuthedRequest) -> HttpResponse:
    entries = LedgerEntry.objects.filter(user=request.user).select_related("job")
    page = Paginator(entries, LEDGER_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        **billing_context(request.user),
        "page": page,
        "plans": Plan.objects.public(),
        "open_request": UpgradeRequest.objects.filter(
            user=request.user, status=UpgradeRequest.Status.OPEN
        ).first(),
    }
    template = "billing/billing.html#ledger" if request.htmx else "billing/billing.html"
    return render(request, template, context)


@login_required
@require_POST
def request_upgrade(request: AuthedRequest) -> HttpResponse:
    plan = get_object_or_404(Plan.objects.public(), slug=request.POST.get("plan", ""))
    try:
        with transaction.atomic():
            UpgradeRequest.objects.create(
                user=request.user, plan=plan, message=request.POST.get("message", "")[:500]
            )
    except IntegrityError:
        messages.error(request, "You already have an open request; we will be in touch.")
    else:
        messages.success(request, f"Thanks! We received your request for the {plan.name} plan.")
    return redirect("billing:billing")
