"""`make bench ARGS=instructions`.

Run as a script, this file is the load that valgrind counts: `python instructions.py profile|submit
KEYS_FILE N` sends 30 warm-up requests and then N more through Django's test client.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
WARM = 30
COUNTED = {"profile": 1000, "submit": 300}
SUBMIT_USERS = 20  # as the peer comparison's load: no user nears the concurrent-job cap


def _instructions(what: str, keys: Path, count: int) -> int:
    """Instructions (callgrind's `I refs`) of a whole run of this file's load."""
    done = subprocess.run(
        [
            *("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"),
            *(sys.executable, __file__, what, str(keys), str(count)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in done.stderr.splitlines() if "I   refs:" in line)
    return int(line.split("I   refs:")[1].replace(",", ""))


def _keys() -> list[str]:
    """The profile's key, then one key each for the submit users, on a metered plan (so a
    submit takes the credit-debit path, as in the peer comparison)."""
    from bench.harness import bench_user

    return [
        bench_user(f"instructions{n}@example.com", monthly_credits=100_000_000)[1]
        for n in range(SUBMIT_USERS + 1)
    ]


def run() -> None:
    """Instructions the web process runs per call (valgrind's callgrind, through Django's test
    client): the same count on every run whatever else the machine is doing, so a change's
    cost shows even on a day the timings swing. Per call = (run with N calls - run with none) / N."""
    from bench.harness import OUT, record

    if shutil.which("valgrind") is None:
        raise SystemExit("The instructions section needs valgrind (apt-get install valgrind).")
    keys = OUT / "instruction-keys.txt"
    OUT.mkdir(parents=True, exist_ok=True)
    keys.write_text("\n".join(_keys()))
    for what, count in COUNTED.items():
        per_call = (_instructions(what, keys, count) - _instructions(what, keys, 0)) / count
        record(f"instructions per call: {what}", round(per_call), "instructions")


def _load(what: str, keys: list[str], count: int) -> None:
    import django

    django.setup()
    from django.test import Client

    from bench.harness import PROXY_HEADERS, sepia_body

    def client(key: str, **headers: str) -> Client:
        return Client(headers={**PROXY_HEADERS, "Authorization": f"Bearer {key}", **headers})

    if what == "profile":
        calls = [partial(client(keys[0]).get, "/api/user/profile")]
        expected = 200
    else:
        body = json.dumps(sepia_body())
        calls = [
            partial(
                client(key, Prefer="respond-async").post, "/api/generate", body, "application/json"
            )
            for key in keys[1:]
        ]
        expected = 202
    for n in range(WARM + count):
        response = calls[n % len(calls)]()
        assert response.status_code == expected, response.content


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanostudio.settings")
    _load(sys.argv[1], Path(sys.argv[2]).read_text().split(), int(sys.argv[3]))
