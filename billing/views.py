from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render

from nanostudio.http import AuthedRequest


@login_required
def billing(request: AuthedRequest) -> HttpResponse:
    return render(request, "coming_soon.html", {"title": "Billing", "section": "billing"})


@login_required
def usage(request: AuthedRequest) -> HttpResponse:
    return render(request, "coming_soon.html", {"title": "Usage", "section": "usage"})
