"""The real app with the per-key rate-limit bucket alone, for `make bench`: the account's
bucket (the plan's rate shared by all of an account's keys) is left out of the one Redis
script, so the auth section can measure what that second bucket costs /api/user/profile."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanostudio.settings")

from django.core.wsgi import get_wsgi_application

from apikeys import ratelimit

application = get_wsgi_application()
_both = ratelimit.check


def _key_bucket_only(*buckets: ratelimit.Bucket) -> tuple[ratelimit.Decision, float]:
    return _both(buckets[0])


ratelimit.check = _key_bucket_only
