from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from audit.context import SYSTEM, Actor, actor_var
from nanostudio.http import client_ip


class ActorMiddleware:
    """The signed-in user (an admin under /admin/) acts in this request, for the audit log.
    On /api/ the key acts instead (set by apikeys.auth)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        actor = SYSTEM
        if user is not None and user.is_authenticated and not request.path.startswith("/api/"):
            admin = request.path.startswith("/admin/") and user.is_staff
            actor = Actor("admin" if admin else "user", user.email, client_ip(request))
        elif not request.path.startswith("/api/"):
            actor = Actor("user", "Signed out", client_ip(request))
        token = actor_var.set(actor)
        try:
            return self.get_response(request)
        finally:
            actor_var.reset(token)
