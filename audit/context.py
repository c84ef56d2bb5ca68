"""Who is acting in this request or task, for the audit log: set by ActorMiddleware (a signed
in user, or an admin under /admin/) and by the API's key authentication (the key)."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    kind: str  # "user", "key", "admin" or "system"
    label: str
    ip: str | None = None


SYSTEM = Actor("system", "Nano Studio")
actor_var: contextvars.ContextVar[Actor] = contextvars.ContextVar("audit_actor", default=SYSTEM)


def set_actor(actor: Actor) -> None:
    """For the rest of this request (the middleware resets it after)."""
    actor_var.set(actor)
