"""`make bench ARGS=peer`."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from bench.harness import ROOT, record

COMPARE = ROOT.parent / "shared" / "peer" / "compare.sh"
THROUGHPUT_ROWS = {
    "GET /healthz (bare)": "healthz",
    "GET /api/user/profile": "profile",
    "POST /api/generate async": "async submit",
}


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def compare(
    ns_src: Path,
    env: dict[str, str] | None = None,
    beside: Callable[[threading.Event], None] | None = None,
) -> str:
    """compare.sh on `ns_src`'s committed HEAD, with `env` added to its environment; `beside`,
    if given, runs in a thread meanwhile until the event it is passed is set. Its output."""
    if not COMPARE.exists():
        raise SystemExit(f"{COMPARE} is not there: the peer comparison needs ../shared/peer")
    # A clean environment: this process's (DJANGO_SETTINGS_MODULE, the bench's DATABASE_URL)
    # would reach the peer's manage.py too.
    clean = {name: os.environ[name] for name in ("PATH", "HOME", "TMPDIR") if name in os.environ}
    done_event = threading.Event()
    thread = threading.Thread(target=beside, args=(done_event,)) if beside else None
    if thread:
        thread.start()
    try:
        done = subprocess.run(
            ["bash", str(COMPARE)],
            cwd=ROOT,
            env={**clean, "NS_SRC": str(ns_src), **(env or {})},
            capture_output=True,
            text=True,
        )
    finally:
        done_event.set()
        if thread:
            thread.join()
    if done.returncode != 0:
        raise SystemExit(f"compare.sh failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    print("\n".join(line for line in done.stdout.splitlines() if line.startswith("|")))
    return done.stdout


def record_table(output: str, prefix: str = "peer") -> None:
    """compare.sh's tables into the results, each name starting with `prefix`."""
    for line in output.splitlines():
        cells = _cells(line) if line.startswith("|") else []
        if cells and cells[0] in THROUGHPUT_ROWS:
            name = THROUGHPUT_ROWS[cells[0]]
            record(f"{prefix}: {name} req/s, Nano Studio", float(cells[1]))
            record(f"{prefix}: {name} req/s, peer (DRF)", float(cells[2]))
            record(f"{prefix}: {name}, Nano Studio / peer", float(cells[3]))
        elif cells and cells[0] in ("healthz", "profile", "generate") and len(cells) >= 3:
            record(f"{prefix}: in-process CPU, {cells[0]}, Nano Studio", float(cells[1]), "ms")
            record(f"{prefix}: in-process CPU, {cells[0]}, peer", float(cells[2]), "ms")


def run() -> None:
    """The conventional stack's two hot endpoints (../shared/peer, Django REST Framework)
    against this project's committed HEAD, in one run: req/s, ratios, in-process CPU."""
    record_table(compare(ROOT))
