"""The profile's floor (bench/floor.py) served at `/api/user/profile`, so that
`../shared/peer/compare.sh` races it against the peer's profile in one run (`make bench
ARGS=durable` runs compare.sh on a checkout whose nanostudio/wsgi.py imports this). The rest of
the app is served as it is."""

from __future__ import annotations

from django.urls import path

from bench import floor

application = floor.application
# Under /api/ the usage middleware keeps the event of the call the floor authenticated: the
# view must not keep one too.
floor.urlpatterns.insert(0, path("api/user/profile", floor.floor, {"record": False}))
