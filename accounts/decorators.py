from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from allauth.account.internal.flows.login import get_authentication_records
from django.http import HttpResponseBase
from django.shortcuts import redirect
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from nanostudio.http import AuthedRequest

# Logging in or re-entering the password within this window counts as "recent".
RECENT_LOGIN_WINDOW_S = 15 * 60


def logged_in_recently(request: AuthedRequest) -> bool:
    records = get_authentication_records(request, request.user)
    now = time.time()
    return any(now - record.get("at", 0) < RECENT_LOGIN_WINDOW_S for record in records)


View = Callable[..., HttpResponseBase]


def recent_login_required(view: View) -> View:
    """Sensitive actions (minting a secret) need a login or password entry in the last 15 min."""

    @wraps(view)
    def wrapper(request: AuthedRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if logged_in_recently(request):
            return view(request, *args, **kwargs)
        next_url = request.get_full_path() if request.method == "GET" else request.path
        url = f"{reverse('account_reauthenticate')}?{urlencode({'next': next_url})}"
        # htmx would swap the password page into a dialog: load it as a page instead.
        return HttpResponseClientRedirect(url) if request.htmx else redirect(url)

    return wrapper
