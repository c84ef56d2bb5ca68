from __future__ import annotations

from dataclasses import dataclass

from allauth.account.decorators import reauthentication_required
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.mail import read_mailbox
from accounts.models import User
from apikeys.models import ApiKey
from billing.views import billing_context
from nanostudio.http import AuthedRequest
from studio.models import Job
from usage.views import usage_sparkline


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/home.html")


@dataclass(frozen=True)
class Step:
    """One item of the dashboard's Get started checklist."""

    title: str
    url: str
    done: bool


def getting_started(user: User) -> list[Step]:
    """The first three things a newcomer does, each ticked off once it has happened."""
    keys = ApiKey.objects.filter(user=user)
    return [
        Step("Create an API key", reverse("apikeys:list"), keys.exists()),
        Step(
            "Call GET /api/user/profile with it",
            reverse("docs:index") + "#first-call",
            keys.filter(last_used_at__isnull=False).exists(),
        ),
        Step(
            "Run your first job", reverse("studio:studio"), Job.objects.filter(user=user).exists()
        ),
    ]


@login_required
def dashboard(request: AuthedRequest) -> HttpResponse:
    user = request.user
    steps = getting_started(user)
    context = {
        **billing_context(user),
        "sparkline": usage_sparkline(user),
        "steps": steps,
        "next_step": next((step for step in steps if not step.done), None),
        "recent_jobs": Job.objects.filter(user=user).select_related("template")[:5],
    }
    return render(request, "accounts/dashboard.html", context)


@login_required
@reauthentication_required
@require_http_methods(["GET", "POST"])
def delete_account(request: AuthedRequest) -> HttpResponse:
    if request.method == "POST":
        if request.POST.get("confirm") != request.user.email:
            messages.error(request, "Type your email address exactly to confirm.")
            return render(request, "accounts/delete_account.html", status=422)
        user = request.user
        logout(request)
        # Keys, jobs and ledger entries belong to the user and go with it (on_delete=CASCADE).
        user.delete()
        messages.success(request, "Your account and everything in it has been deleted.")
        return redirect("home")
    return render(request, "accounts/delete_account.html")


def dev_mailbox(request: HttpRequest) -> HttpResponse:
    if not settings.DEBUG:
        raise Http404
    return render(request, "accounts/dev_mailbox.html", {"emails": read_mailbox()})
