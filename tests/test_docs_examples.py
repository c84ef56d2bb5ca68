"""The docs' examples, run as a reader would run them: the files the docs render, against a
live server and a real worker, with a real key in $NANO_API_KEY. Their output must have the
shape of the response the docs show."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests as http

from conftest import sample_png, text_png
from docs import examples

pytestmark = pytest.mark.django_db(transaction=True)

NODE = shutil.which("node")
CURL = shutil.which("curl")
RECEIPT_TEXT = "Nano Studio reads text from images"
EXAMPLES = [
    "profile",
    "templates",
    "models",
    "generate",
    "ocr",
    "jobs",
    "usage",
    "keys",
    "requests",
]
RUNNERS = {
    "request.py": [sys.executable],
    "request.sh": ["bash"],
    "request.mjs": ["node"],
    "request.axios.mjs": ["node"],
}


NODE_MODULES = Path(__file__).resolve().parent.parent / "node_modules"  # `npm ci` (make test)


def _axios_missing() -> str | None:
    if not NODE:
        return "Node.js is not installed"
    if not (NODE_MODULES / "axios" / "package.json").exists():
        return "axios is not installed (npm ci)"
    return None


def _run(name: str, filename: str, base_url: str, secret: str, workdir: Path):
    """Run one example file as the docs show it, pointed at `base_url`."""
    path = workdir / f"{name}-{filename}"
    path.write_text(examples.source(name, filename, base_url))
    if filename.endswith(".mjs") and not (workdir / "node_modules").is_symlink():
        (workdir / "node_modules").symlink_to(NODE_MODULES)  # where `import "axios"` looks
    env = {**os.environ, "NANO_API_KEY": secret}
    return subprocess.run(
        [*RUNNERS[filename], str(path)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _first_json(output: str):
    return json.JSONDecoder().raw_decode(output[output.index("{") :])[0]


def _shape_errors(sample, actual, where: str = "") -> list[str]:
    """Where `actual` differs in shape from the documented `sample` (keys, nesting, types)."""
    if sample is None or actual is None:
        return []  # nullable fields: either may be null in one run
    if isinstance(sample, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object"]
        problems = (
            [f"{where}: keys {sorted(set(sample) ^ set(actual))} differ"]
            if set(sample) != set(actual)
            else []
        )
        for key in set(sample) & set(actual):
            problems += _shape_errors(sample[key], actual[key], f"{where}.{key}")
        return problems
    if isinstance(sample, list):
        if not isinstance(actual, list):
            return [f"{where}: expected a list"]
        return _shape_errors(sample[0], actual[0], f"{where}[0]") if sample and actual else []
    numbers = (int, float)
    if isinstance(sample, numbers) and isinstance(actual, numbers):
        return []
    return [] if type(sample) is type(actual) else [f"{where}: {type(actual).__name__}"]


@pytest.fixture
def workdir(tmp_path) -> Path:
    """The files the examples read: photo.png and a receipt with a known sentence."""
    (tmp_path / "photo.png").write_bytes(sample_png((120, 80)))
    (tmp_path / "receipt.png").write_bytes(text_png(RECEIPT_TEXT))
    return tmp_path


@pytest.fixture
def full_key(alice, mint, settings):
    """A full-access key on Pro, whose rate limit fits every example run back to back; a
    Gemini key configured, so that /api/models lists models (listing calls no provider)."""
    from billing.ledger import change_plan
    from billing.models import Plan

    settings.GEMINI_API_KEY = "docs-example-key"

    change_plan(alice, Plan.objects.get(slug="pro"))
    return mint(alice, name="docs examples")[1]


def _run_every_endpoint(filenames: tuple[str, ...], base_url: str, secret: str, workdir: Path):
    # A refused request, for the request log's example (it lists the last 4xx) to show.
    missing = f"{base_url}/api/jobs/00000000-0000-4000-8000-000000000000"
    assert http.get(missing, headers={"Authorization": f"Bearer {secret}"}).status_code == 404
    for name in EXAMPLES:
        documented = json.loads((examples.EXAMPLES_DIR / name / "response.json").read_text())
        for filename in filenames:
            result = _run(name, filename, base_url, secret, workdir)
            assert result.returncode == 0, (name, filename, result.stderr[-2000:])
            body = _first_json(result.stdout)
            assert body["success"] is True, (name, filename, body)
            assert _shape_errors(documented, body) == [], (name, filename)


def test_every_endpoints_python_and_curl_examples_answer_as_documented(
    live_server, celery_worker, full_key, workdir
):
    assert CURL, "curl is needed to run the curl examples"
    _run_every_endpoint(("request.py", "request.sh"), live_server.url, full_key, workdir)
    # What the examples did, checked beyond the shape:
    assert (workdir / "result.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # generate saved it
    ocr = _first_json(_run("ocr", "request.py", live_server.url, full_key, workdir).stdout)
    assert " ".join(ocr["data"]["result"]["text"].split()) == RECEIPT_TEXT
    jobs = _run("jobs", "request.py", live_server.url, full_key, workdir).stdout
    assert re.match(r"202 /api/jobs/[0-9a-f-]{36} queued\n(cancelled|JOB_NOT_CANCELLABLE)\n", jobs)


@pytest.mark.parametrize("filename", ["request.mjs", "request.axios.mjs"])
def test_every_endpoints_javascript_examples_answer_as_documented(
    filename, live_server, celery_worker, full_key, workdir
):
    missing = "Node.js is not installed" if not NODE else None
    if filename == "request.axios.mjs":
        missing = _axios_missing()
    if missing:
        pytest.skip(f"JavaScript examples not run: {missing}")
    _run_every_endpoint((filename,), live_server.url, full_key, workdir)


def test_the_401_402_403_and_429_paths_end_as_the_docs_say(
    live_server, alice, charlie, mint, workdir
):
    from billing.models import Plan

    revoked, revoked_secret = mint(alice, name="old laptop")
    revoked.revoke()
    result = _run("profile", "request.py", live_server.url, revoked_secret, workdir)
    assert result.returncode == 1
    assert result.stderr.startswith("401 INVALID_API_KEY: The API key is not valid")
    curl = _run("profile", "request.sh", live_server.url, revoked_secret, workdir)
    assert _first_json(curl.stdout)["error"]["code"] == "INVALID_API_KEY"

    _, broke = mint(charlie, name="charlie")
    result = _run("generate", "request.py", live_server.url, broke, workdir)
    assert result.returncode == 1
    assert result.stderr.startswith("402 INSUFFICIENT_CREDITS: ")

    _, read_only = mint(alice, name="reader", scopes=["jobs:read", "usage:read"])
    result = _run("generate", "request.py", live_server.url, read_only, workdir)
    assert result.returncode == 1
    assert result.stderr.startswith(
        "403 INSUFFICIENT_PERMISSIONS: This API key lacks the `generate` scope"
    )

    # One call at once, one more a second: the retry example waits and gets through.
    Plan.objects.filter(slug="free").update(rate_per_minute=60, burst=1)
    _, secret = mint(alice, name="busy")
    result = _run("retry", "request.py", live_server.url, secret, workdir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line for line in lines if line.startswith("credits left:")] == ["credits left: 50"] * 3
    assert any(
        re.fullmatch(r"429 RATE_LIMIT_EXCEEDED, retrying in [\d.]+ s", line) for line in lines
    )
