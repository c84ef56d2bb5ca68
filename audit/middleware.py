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
        if request.path.startswith("/api/"):
            actor = SYSTEM  # until the key authenticates; the session user is never loaded
        elif request.user.is_authenticated:
            user = request.user
            admin = request.path.startswith("/admin/") and user.is_staff
            actor = Actor("admin" if admin else "user", user.email, client_ip(request))
        else:
            actor = Actor("user", "Signed out", client_ip(request))
        token = actor_var.set(actor)  # reset below: nothing leaks into the next request
        try:
            return self.get_response(request)
        finally:
            actor_var.reset(token)
