"""Usage metering's place in the request: one event per /api call, after its answer is made."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from usage import metering


class UsageMiddleware:
    """Records each /api call (usage.metering.record) from the call object ApiMiddleware, which
    sits inside this one, filled in; the event is written before the answer leaves, so none is
    lost once a client has its answer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith("/api/"):
            metering.record(request, response)
        return response
