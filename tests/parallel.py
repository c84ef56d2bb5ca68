"""Gives each pytest-xdist worker a run of its own: loaded with `-p` (tests/run.py), before
Django reads its settings, it points the worker at its own Redis database and `VAR_DIR`.
pytest-django already gives each worker its own test database (`test_nanostudio_gw1`), and the
workers, web servers and beats a test starts inherit this environment, so they share the
worker's database, broker, cache and files, never another worker's.

Redis databases: the first worker keeps the one the runner names (15 by default), the others
take 8, 7, ... (9 to 13 are the Redis roles' tests', 14 the bench's).
"""

from __future__ import annotations

import os

OTHER_REDIS_DATABASES = (8, 7, 6, 5, 4, 3, 2)

_worker = os.environ.get("PYTEST_XDIST_WORKER")  # "gw0", "gw1", ...; unset without xdist
if _worker:
    _index = int(_worker.removeprefix("gw"))
    os.environ["VAR_DIR"] = os.path.join(os.environ["VAR_DIR"], _worker)
    if _index and os.environ.get("REDIS_URL"):
        _base = os.environ["REDIS_URL"].rsplit("/", 1)[0]
        os.environ["REDIS_URL"] = f"{_base}/{OTHER_REDIS_DATABASES[_index - 1]}"
