"""`make bench`: speed checks against the real PostgreSQL and Redis, medians and ratios.

Each section (a module under bench/sections/) prints its numbers and adds them to
var/bench/results.json. Run one with `make bench ARGS="auth"`.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make `bench.*` and the apps importable

from bench.harness import (  # noqa: E402
    DATABASE_URL,
    ENV,
    OUT,
    REDIS_URL,
    USAGE_DATABASE_URL,
    results,
    setup_database,
)

SECTIONS = [
    "auth",
    "billing",
    "jobs",
    "jobstart",
    "usage",
    "requests",
    "webhooks",
    "storage",
    "peer",
    "durable",
    "instructions",
]
SEEDED = ("usage", "requests")  # on the database of 10 million events (bench/seed.py)


def run_section(name: str) -> None:
    """One section in this process, on its own database; its numbers go to var/bench/<name>.json."""
    database_url = USAGE_DATABASE_URL if name in SEEDED else DATABASE_URL
    os.environ.update({**ENV, "DATABASE_URL": database_url})
    os.environ["DJANGO_SETTINGS_MODULE"] = "nanostudio.settings"
    setup_database(database_url, fresh=name not in SEEDED)
    import django

    django.setup()
    section = importlib.import_module(f"bench.sections.{name}")
    print(f"\n[{name}] {(section.run.__doc__ or '').strip()}", flush=True)
    started = time.perf_counter()
    section.run()
    print(f"  ({time.perf_counter() - started:.1f} s)")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(results, indent=2))


def main(argv: list[str]) -> int:
    if argv[:1] == ["--section"]:
        run_section(argv[1])
        return 0
    chosen = argv or list(SECTIONS)
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        raise SystemExit(
            f"Unknown section(s) {', '.join(sorted(unknown))}; pick from {list(SECTIONS)}"
        )
    print(f"Benchmarks on PostgreSQL and {REDIS_URL} ({os.cpu_count()} CPUs)")
    combined = {}
    for name in chosen:
        # A process per section: each has its own database and starts with cold caches.
        subprocess.run([sys.executable, __file__, "--section", name], cwd=ROOT, check=True)
        combined.update(json.loads((OUT / f"{name}.json").read_text()))
    (OUT / "results.json").write_text(json.dumps(combined, indent=2))
    print(f"\nSaved {OUT / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
