"""Settings → API Keys: one page, with its dialogs as named partials (htmx) or pages (no JS)."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from accounts.decorators import recent_login_required
from apikeys.forms import ApiKeyCreateForm, ApiKeyEditForm, ApiKeyRenameForm, ApiKeyRollForm
from apikeys.models import PRESETS, ApiKey, KeyLimitReached, KeyNameTaken
from billing.models import Plan, plan_of
from nanostudio.http import AuthedRequest

PAGE = "apikeys/key_list.html"


def _get_key_for_user(request: AuthedRequest, key_id: int) -> ApiKey:
    return get_object_or_404(ApiKey, pk=key_id, user=request.user)


def _dialog(request: AuthedRequest, partial: str, context: dict[str, Any]) -> HttpResponse:
    """A dialog's content: the partial alone for htmx, else a page around it. A form with
    errors answers 422, which htmx swaps in place (base.html's htmx-config)."""
    form = context.get("form")
    status = 422 if form is not None and form.errors else 200
    context = {"partial": f"{PAGE}#{partial}", **context}
    template = f"{PAGE}#{partial}" if request.htmx else "apikeys/dialog_page.html"
    return render(request, template, context, status=status)


def _done(request: AuthedRequest, message: str) -> HttpResponse:
    """After a change: htmx closes the dialog and reloads the table; without JS, redirect."""
    if request.htmx:
        response = HttpResponse(status=204)
        return trigger_client_event(response, "keys-changed", {"message": message})
    messages.success(request, message)
    return redirect("apikeys:list")


def _list_context(request: AuthedRequest) -> dict[str, Any]:
    keys = list(ApiKey.objects.filter(user=request.user))
    live = sum(1 for key in keys if key.status != "revoked" and not key.is_expired)
    return {"keys": keys, "live_count": live, "key_limit": ApiKey.objects.limit_for(request.user)}


@login_required
@require_GET
@vary_on_headers("HX-Request")  # the page, or its partial for htmx
def key_list(request: AuthedRequest) -> HttpResponse:
    template = f"{PAGE}#key-table" if request.htmx else PAGE
    return render(request, template, _list_context(request))


@login_required
@recent_login_required
@never_cache
@vary_on_headers("HX-Request")
def key_create(request: AuthedRequest) -> HttpResponse:
    form = ApiKeyCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            key, secret = ApiKey.objects.mint(
                request.user,
                name=data["name"],
                scopes=data["scope_list"],
                expires_at=data["expires_at"],
                prefix=data["prefix"],
                budget_credits=data["budget_cap"],
                budget_period=data["budget_period"],
            )
        except KeyLimitReached as limit:
            form.add_error(
                None, f"{limit} Revoke a key you no longer use, or upgrade your plan under Billing."
            )
        except KeyNameTaken as taken:
            form.add_error("name", str(taken))
        else:
            response = _dialog(request, "secret", {"key": key, "secret": secret, "created": True})
            return trigger_client_event(response, "keys-changed", {}, after="swap")
    return _dialog(request, "create-form", {"form": form, "presets": PRESETS})


@login_required
@recent_login_required
@never_cache
@vary_on_headers("HX-Request")
def key_roll(request: AuthedRequest, key_id: int) -> HttpResponse:
    key = _get_key_for_user(request, key_id)
    if key.status == ApiKey.Status.REVOKED:
        return _done(request, f"“{key.name}” is revoked and cannot be rolled.")
    form = ApiKeyRollForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        secret = key.roll(form.cleaned_data["grace"])
        response = _dialog(request, "secret", {"key": key, "secret": secret, "created": False})
        return trigger_client_event(response, "keys-changed", {}, after="swap")
    return _dialog(request, "roll-form", {"key": key, "form": form})


@login_required
@vary_on_headers("HX-Request")
def key_rename(request: AuthedRequest, key_id: int) -> HttpResponse:
    key = _get_key_for_user(request, key_id)
    form = ApiKeyRenameForm(request.POST or None, initial={"name": key.name})
    if request.method == "POST" and form.is_valid() and key.status != ApiKey.Status.REVOKED:
        try:
            key.rename(form.cleaned_data["name"])
        except KeyNameTaken as taken:
            form.add_error("name", str(taken))
        else:
            return _done(request, f"Renamed to “{key.name}”.")
    return _dialog(request, "rename-form", {"key": key, "form": form})


@login_required
@vary_on_headers("HX-Request")
def key_edit(request: AuthedRequest, key_id: int) -> HttpResponse:
    """Scopes (any change: the owner is signed in), expiry, budget and own rate, without
    rolling the key; each change goes to the security log."""
    key = _get_key_for_user(request, key_id)
    if key.status == ApiKey.Status.REVOKED:
        return _done(request, f"“{key.name}” is revoked and cannot be changed.")
    plan_rate = (plan_of(request.user) or Plan()).rate_per_minute
    initial = {
        "scopes": key.scopes,
        "expires_on": key.expires_at.date() if key.expires_at else None,
        "budget_cap": key.budget_credits,
        "budget_period": key.budget_period,
        "rate_per_minute": key.rate_per_minute,
    }
    form = ApiKeyEditForm(request.POST or None, initial=initial, plan_rate=plan_rate)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        day = data["expires_on"]
        with transaction.atomic():
            key.set_scopes(data["scopes"])
            if day != initial["expires_on"]:
                key.set_expiry(
                    timezone.make_aware(datetime.combine(day, time.min)) if day else None
                )
            if (data["budget_cap"], data["budget_period"]) != (
                key.budget_credits,
                key.budget_period,
            ):
                key.set_budget(data["budget_cap"], data["budget_period"])
            if data["rate_per_minute"] != key.rate_per_minute:
                key.set_rate(data["rate_per_minute"])
        return _done(request, f"“{key.name}” saved.")
    return _dialog(request, "edit-form", {"key": key, "form": form, "plan_rate": plan_rate})


@login_required
@require_POST
@vary_on_headers("HX-Request")
def key_toggle(request: AuthedRequest, key_id: int) -> HttpResponse:
    key = _get_key_for_user(request, key_id)
    enable = request.POST.get("enabled") == "1"
    key.set_enabled(enable)
    return _done(request, f"“{key.name}” is {'enabled' if enable else 'disabled'}.")


@login_required
@vary_on_headers("HX-Request")
def key_revoke(request: AuthedRequest, key_id: int) -> HttpResponse:
    key = _get_key_for_user(request, key_id)
    if request.method == "POST":
        key.revoke()
        return _done(request, f"“{key.name}” is revoked. Requests with it now get 401.")
    return _dialog(request, "revoke-confirm", {"key": key})


@login_required
@require_POST
@vary_on_headers("HX-Request")
def key_narrow(request: AuthedRequest, key_id: int) -> HttpResponse:
    """The one-click "narrow it?": keep only the scopes posted, which must be some of the
    key's own (never a widening: that is the Edit dialog's, with its own checks)."""
    key = _get_key_for_user(request, key_id)
    scopes = sorted(set(request.POST.getlist("scopes")))
    if key.status == ApiKey.Status.REVOKED or not scopes or not set(scopes) <= set(key.scopes):
        return _done(request, f"“{key.name}” was not changed: those are not some of its scopes.")
    key.set_scopes(scopes)
    return _done(request, f"“{key.name}” now has only {', '.join(scopes)}.")


@login_required
@require_POST
@vary_on_headers("HX-Request")
def key_end_grace(request: AuthedRequest, key_id: int) -> HttpResponse:
    key = _get_key_for_user(request, key_id)
    if key.end_grace():
        return _done(request, f"“{key.name}”: the old secret no longer works.")
    return _done(request, f"“{key.name}” had no old secret still working.")
