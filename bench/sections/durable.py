"""`make bench ARGS=durable`."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench.harness import ENV, ROOT
from bench.sections.peer import compare, record_table
from tests.processes import free_port, start_redis, start_usage_mover, stop_process

# compare.sh's own database and Redis database for Nano Studio (its NS_ENV).
COMPARE_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/peer_ns"
COMPARE_REDIS_URL = "redis://127.0.0.1:6379/12"
FLOOR_WSGI = "from bench.profile_floor import application  # noqa: F401\n"


def _floor_checkout(scratch: Path) -> Path:
    """The committed HEAD with one more commit, which serves the profile's floor
    (bench/profile_floor.py) as the app. In a fixed place, so that compare.sh's copy of it
    fetches it again on the next run."""
    checkout = scratch / "floor-src"
    shutil.rmtree(checkout, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", str(ROOT), str(checkout)], check=True)
    (checkout / "nanostudio" / "wsgi.py").write_text(FLOOR_WSGI)
    git = ["git", "-C", str(checkout), "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run([*git, "commit", "-qam", "Serve the profile's floor"], check=True)
    return checkout


def _mover(copy: Path, run_dir: Path, usage_url: str) -> Callable[[threading.Event], None]:
    """The Procfile's `usage` process of compare.sh's copy of the code (`copy`), on its
    database, from the moment compare.sh has made and seeded it (it writes ns-keys.txt then)
    until the run ends."""

    def beside(done: threading.Event) -> None:
        while not (run_dir / "ns-keys.txt").exists():
            if done.wait(0.5):
                return
        env = {
            **os.environ,
            **ENV,
            "DATABASE_URL": COMPARE_DATABASE_URL,
            "REDIS_URL": COMPARE_REDIS_URL,
            "REDIS_USAGE_URL": usage_url,
        }
        process = start_usage_mover(env, str(copy / ".venv" / "bin" / "python"), copy)
        done.wait()
        stop_process(process)

    return beside


def run() -> None:
    """compare.sh as production runs (docs/deploy.md): the usage events on a Redis of their
    own that writes each to disk before it answers (appendonly yes, appendfsync always), and
    the `usage` process moving them to PostgreSQL under the load. Then the same run with the
    profile's floor (bench/floor.py: the key's query, the rate-limit step and the usage event,
    nothing else) served at /api/user/profile: how far the durable event lets it go."""
    scratch = Path(tempfile.gettempdir()) / "nanostudio-peer"
    scratch.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        redis = start_redis(
            port, "--appendonly", "yes", "--appendfsync", "always", folder=Path(folder)
        )
        usage_url = f"redis://127.0.0.1:{port}/0"
        try:
            for prefix, source, copy in (
                ("durable", ROOT, scratch / "peer-ns"),
                ("durable floor", _floor_checkout(scratch), scratch / "peer-ns-floor"),
            ):
                run_dir = scratch / f"run-{copy.name}"
                (run_dir / "ns-keys.txt").unlink(missing_ok=True)
                started = time.perf_counter()
                output = compare(
                    source,
                    {
                        "REDIS_USAGE_URL": usage_url,
                        "NS_DIR": str(copy),
                        "RUN_DIR": str(run_dir),
                    },
                    beside=_mover(copy, run_dir, usage_url),
                )
                print(f"  {prefix}: {time.perf_counter() - started:.0f} s")
                record_table(output, prefix)
        finally:
            stop_process(redis)
