"""Runs the suite: against PostgreSQL + Redis when they answer, else on SQLite.

Service URLs default to the local servers and can be overridden with TEST_DATABASE_URL and
TEST_REDIS_URL. With CI=true an unreachable service is a failure, not a reason to skip.

The tests run in NANO_TEST_WORKERS processes (pytest-xdist; one per core, at most 4, by
default; 0 runs them in this one), a test file's tests in the same process, each process on a
database, Redis database and VAR_DIR of its own (tests/parallel.py).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _reachable_postgres(url: str) -> str | None:
    import psycopg

    try:
        psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", connect_timeout=3).close()
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]
    return None


def _reachable_redis(url: str) -> str | None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        return str(exc)
    return None


def main() -> int:
    database_url = os.environ.get(
        "TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/nanostudio"
    )
    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    problems = {
        name: problem
        for name, problem in (
            ("PostgreSQL", _reachable_postgres(database_url)),
            ("Redis", _reachable_redis(redis_url)),
        )
        if problem
    }
    env = dict(os.environ)
    env["TESTING"] = "1"
    # Settings as in production in both modes (embedded mode would default DEBUG on); the
    # tests that need DEBUG turn it on themselves.
    env["DEBUG"] = "0"
    # Tests speak plain HTTP to the test client and live server; the redirect itself is tested.
    env.setdefault("SECURE_SSL_REDIRECT", "0")
    env["VAR_DIR"] = str(ROOT / "var" / "test")
    shutil.rmtree(env["VAR_DIR"], ignore_errors=True)
    if not problems:
        env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, NANO_TEST_SERVICES="1")
        print(f"Testing in production mode: PostgreSQL {database_url}, Redis {redis_url}")
    else:
        for name, problem in problems.items():
            print(f"{name} is unreachable: {problem}")
        if os.environ.get("CI", "").lower() == "true":
            print("CI=true: the services must be reachable. Failing.")
            return 2
        print("Testing in embedded mode on SQLite; tests marked 'services' are skipped.")
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        env["NANO_TEST_SERVICES"] = "0"
    workers = int(os.environ.get("NANO_TEST_WORKERS", min(os.cpu_count() or 1, 4)))
    parallel = ["-n", str(workers), "--dist", "loadfile"] if workers else []
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    sys.stdout.flush()
    pytest = str(Path(sys.executable).parent / "pytest")
    argv = [pytest, "-p", "tests.parallel", *parallel, *sys.argv[1:]]
    os.execve(pytest, argv, env)  # does not return


if __name__ == "__main__":
    sys.exit(main())
