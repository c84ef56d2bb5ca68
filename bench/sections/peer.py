"""`make bench ARGS=peer`."""

from __future__ import annotations

import os
import subprocess

from bench.harness import ROOT, record

COMPARE = ROOT.parent / "shared" / "peer" / "compare.sh"
THROUGHPUT_ROWS = {
    "GET /healthz (bare)": "healthz",
    "GET /api/user/profile": "profile",
    "POST /api/generate async": "async submit",
}


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def run() -> None:
    """The conventional stack's two hot endpoints (../shared/peer, Django REST Framework)
    against this project's committed HEAD, in one run: req/s, ratios, in-process CPU."""
    if not COMPARE.exists():
        raise SystemExit(f"{COMPARE} is not there: the peer comparison needs ../shared/peer")
    # A clean environment: this process's (DJANGO_SETTINGS_MODULE, the bench's DATABASE_URL)
    # would reach the peer's manage.py too.
    clean = {name: os.environ[name] for name in ("PATH", "HOME", "TMPDIR") if name in os.environ}
    done = subprocess.run(
        ["bash", str(COMPARE)],
        cwd=ROOT,
        env={**clean, "NS_SRC": str(ROOT)},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"compare.sh failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    print("\n".join(line for line in done.stdout.splitlines() if line.startswith("|")))
    for line in done.stdout.splitlines():
        cells = _cells(line) if line.startswith("|") else []
        if cells and cells[0] in THROUGHPUT_ROWS:
            name = THROUGHPUT_ROWS[cells[0]]
            record(f"peer: {name} req/s, Nano Studio", float(cells[1]))
            record(f"peer: {name} req/s, peer (DRF)", float(cells[2]))
            record(f"peer: {name}, Nano Studio / peer", float(cells[3]))
        elif cells and cells[0] in ("healthz", "profile", "generate") and len(cells) >= 3:
            record(f"peer: in-process CPU, {cells[0]}, Nano Studio", float(cells[1]), "ms")
            record(f"peer: in-process CPU, {cells[0]}, peer", float(cells[2]), "ms")
