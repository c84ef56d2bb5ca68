"""Why the Studio refuses a submit (plan, credits, engine, input, idempotency)."""

from __future__ import annotations

from nanostudio.errors import ApiError


class Rejected(ApiError):
    """A submit refused for one of the product's reasons, named by its error code: the API
    answers it by that code (status from the one table), the Studio page shows its message."""
