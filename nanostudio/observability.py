"""What an operator watches: errors to Sentry (SENTRY_DSN) and Prometheus metrics (/metrics)."""

from __future__ import annotations

from typing import Any


def start_sentry(dsn: str, *, environment: str, traces_sample_rate: float) -> None:
    """sentry-sdk for Django and Celery: unhandled errors in views and tasks, and ERROR log
    lines, each tagged with the request id it belongs to. No personal data is sent (no user
    emails, addresses or bodies); API keys never reach a log line or an error to begin with."""
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    def tag_request(event: Any, hint: Any) -> Any:
        from nanostudio.logging import request_id_var

        request_id = request_id_var.get()
        if request_id != "-":
            event.setdefault("tags", {})["request_id"] = request_id
        return event

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,
        before_send=tag_request,
    )
