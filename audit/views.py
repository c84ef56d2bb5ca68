"""Settings → Security log: the account's own audit trail."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render

from nanostudio.http import AuthedRequest

PAGE_SIZE = 50


@login_required
def security_log(request: AuthedRequest) -> HttpResponse:
    entries = request.user.audit_entries.all()
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "audit/security_log.html", {"page": page})
