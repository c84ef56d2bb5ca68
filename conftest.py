"""Shared fixtures: the cast (alice, bob, charlie), services, a real Celery worker, a browser."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import start_worker, stop_process

ROOT = Path(__file__).resolve().parent
SCREENSHOTS = ROOT / "var" / "screenshots"
SERVICES = os.environ.get("NANO_TEST_SERVICES") == "1"
IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_configure(config: pytest.Config) -> None:
    from django.apps import apps
    from django.db.models.signals import post_migrate

    from nanostudio.dirs import make_var_folders

    make_var_folders()  # what manage.py and the servers do at start
    # Once per flush or migrate: post_migrate is sent for each app, this is billing's.
    post_migrate.connect(_seed_reference_data, sender=apps.get_app_config("billing"))


# Playwright's sync API runs an event loop in the test thread; the ORM calls the tests make
# around it are still synchronous, so Django's async-safety guard does not apply here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_services = pytest.mark.skip(reason="PostgreSQL/Redis unreachable: embedded-mode run")
    for item in items:
        if "services" in item.keywords and not SERVICES:
            item.add_marker(skip_services)


# Data migrations that seed reference rows. A transactional test empties every table when it
# ends, and Django's flush then sends post_migrate (as for its content types and permissions):
# the rows are put back there, so every test, in whatever order its process runs it, finds them.
SEED_MIGRATIONS = [
    ("billing.migrations.0002_seed_plans", "seed_plans"),
    ("studio.migrations.0003_seed_templates", "seed_templates"),
    ("studio.migrations.0010_seed_image_model_templates", "forwards"),
]


def _seed_reference_data(**kwargs: object) -> None:
    import importlib

    from django.apps import apps

    for module, function in SEED_MIGRATIONS:  # each is idempotent
        getattr(importlib.import_module(module), function)(apps, None)


@pytest.fixture(autouse=True)
def _no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Webhook URLs are resolved by a resolver the tests control: `localhost` only, every
    other name does not resolve, so no test sends a DNS query (or anything) off this machine.
    Tests that need a name map it themselves (monkeypatch outbound.resolve)."""
    import ipaddress
    import socket

    from nanostudio import outbound

    def resolve(host: str, port: int) -> list[outbound.IPAddress]:
        if host == "localhost":
            return [ipaddress.ip_address("127.0.0.1")]
        raise socket.gaierror(f"{host} does not resolve in the tests")

    monkeypatch.setattr(outbound, "resolve", resolve)


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    from django.core.cache import cache

    from apikeys import ratelimit
    from studio import catalogue
    from usage import stream

    # In production mode this also empties the rate limiter's Redis database, and the usage
    # events' stream (the same database in tests).
    cache.clear()
    ratelimit._limiter = None  # embedded mode: a fresh in-process limiter
    stream.events.cache_clear()  # on the URL this test's settings name
    catalogue.forget()  # rolled-back templates send no signal
    yield


def usage_events():
    """Every usage event, once those waiting in the stream are moved (as the readers do)."""
    from usage import metering
    from usage.models import UsageEvent

    metering.move_waiting()
    return UsageEvent.objects.all()


def make_user(email: str, password: str = "correct horse battery", *, plan: str = "free"):
    from allauth.account.models import EmailAddress

    from accounts.models import User
    from billing.ledger import change_plan
    from billing.models import Plan
    from billing.subscriptions import start_default_plan

    user = User.objects.create_user(email=email, password=password)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    start_default_plan(user)
    if plan != "free":
        change_plan(user, Plan.objects.get(slug=plan))
    return User.objects.get(pk=user.pk)


@pytest.fixture
def alice(db):
    return make_user("alice@example.com")


@pytest.fixture
def bob(db):
    return make_user("bob@example.com")


@pytest.fixture
def charlie(db):
    """On the Free plan with this month's 50 credits spent."""
    from billing.ledger import adjust

    user = make_user("charlie@example.com")
    adjust(user, -50, "Spent this month's allowance")
    return user


@pytest.fixture
def admin_client(client, db):
    """Logged in as a superuser (overrides pytest-django's fixture of the same name)."""
    from accounts.models import User

    admin = User.objects.create_superuser(email="root@example.com", password="x-admin-pass-1")
    client.force_login(admin)
    return client


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


# --- A real Celery worker process --------------------------------------------------------


def worker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a subprocess needs to share this test run's database and broker."""
    from django.db import connection

    env = dict(os.environ)
    name = connection.settings_dict["NAME"]
    if connection.vendor == "postgresql":
        base = env["DATABASE_URL"].rsplit("/", 1)[0]
        env["DATABASE_URL"] = f"{base}/{name}"
    else:
        env["SQLITE_PATH"] = str(name)
    env.update(extra or {})
    return env


@pytest.fixture
def celery_worker(transactional_db) -> Iterator[subprocess.Popen]:
    """A worker process on this run's database and broker; yields once it answers a ping."""
    from nanostudio.celery import ping

    process = start_worker(worker_env())
    try:
        assert ping.delay().get(timeout=60) == "pong"
        yield process
    finally:
        stop_process(process)


@pytest.fixture
def fake(settings):
    """A local server that answers as Gemini, OpenAI and an OpenAI-compatible image server do
    (tests/fake_providers.py), with this process's settings pointed at it and a key each."""
    from tests.fake_providers import FakeProviders

    server = FakeProviders()
    for name, value in server.settings.items():
        setattr(settings, name, value)
    settings.IMAGE_PROVIDER = ""
    yield server
    server.close()


# --- Browser -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _chromium():
    path = shutil.which("chromium")
    if not path:
        if IN_CI:
            pytest.fail("Debian's chromium is not installed (apt-get install -y chromium)")
        pytest.skip("Debian's chromium is not installed: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=path,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(_chromium, live_server):
    context = _chromium.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 860}
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# --- API keys ------------------------------------------------------------------------------


@pytest.fixture
def mint():
    """mint(user, name="…", scopes=[…]) -> (key, secret)."""
    from apikeys.models import PRESETS, ApiKey

    def _mint(user, name: str = "test key", scopes=None, **fields):
        return ApiKey.objects.mint(user, name=name, scopes=scopes or PRESETS["full"][1], **fields)

    return _mint


@pytest.fixture
def fresh_login(client, alice):
    """Alice, logged in through the real form (a recent login)."""
    client.post(
        "/accounts/login/",
        {"login": "alice@example.com", "password": "correct horse battery"},
    )
    return client


@pytest.fixture
def alice_key(alice, mint):
    """Alice's full-access key and its secret."""
    return mint(alice, name="alice full")


@pytest.fixture
def api(client):
    """api("get", "/api/…", key=secret, json=…) through the real middleware and routes."""
    import json as jsonlib

    def _call(method: str, path: str, key: str | None = None, json=None, headers=None, **extra):
        headers = dict(headers or {})
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        kwargs = {"headers": headers, **extra}
        if json is not None:
            kwargs["data"] = jsonlib.dumps(json)
            kwargs["content_type"] = "application/json"
        return getattr(client, method)(path, **kwargs)

    return _call


def submit_in_background(api, secret: str) -> tuple[threading.Thread, list]:
    """A sync Sepia submit in a thread of its own (so the test can act while it waits); the
    answer lands in the returned list once the thread ends."""
    answers: list = []
    body = {"image": sample_b64(), "template": "Sepia", "templateType": "filters"}
    thread = threading.Thread(
        target=lambda: answers.append(api("post", "/api/generate", key=secret, json=body))
    )
    thread.start()
    return thread, answers


def race_submits(user, key, *, threads: int, each: int = 1) -> tuple[list, list[str]]:
    """`threads` threads released at once, each submitting a Sepia job `each` times through
    `studio.actions` on its own database connection: the accepted jobs' ids, and the codes
    of the refused submits."""
    from django.db import connection

    from studio import actions
    from studio.models import Template
    from studio.rejections import Rejected

    sepia = Template.objects.get(name="Sepia")
    accepted: list = []
    refused: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def submit() -> None:
        barrier.wait()
        try:
            for _ in range(each):
                try:
                    job = actions.submit_generate(
                        user, key, image=sample_b64(), template=sepia, params={}
                    ).job
                except Rejected as rejection:
                    with lock:
                        refused.append(rejection.code)
                else:
                    with lock:
                        accepted.append(job.pk)
        finally:
            connection.close()

    started = [threading.Thread(target=submit) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()
    return accepted, refused


# --- Images ---------------------------------------------------------------------------------


def sample_png(size=(96, 64)) -> bytes:
    """A small photo-like PNG: a colour gradient with shapes, so every transformation shows."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", size)
    width, height = size
    for x in range(width):
        for y in range(height):
            image.putpixel((x, y), (int(255 * x / width), int(255 * y / height), 128))
    draw = ImageDraw.Draw(image)
    draw.ellipse((width // 4, height // 4, width // 2, height * 3 // 4), fill=(240, 220, 40))
    draw.rectangle((width * 2 // 3, 8, width - 8, height // 2), fill=(20, 30, 200))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def sample_b64() -> str:
    import base64

    return base64.b64encode(sample_png()).decode()


def text_png(sentence: str) -> bytes:
    """A line of black text on white, as OCR tests and examples read it."""
    import io

    from PIL import Image, ImageDraw, ImageFont

    font: ImageFont.FreeTypeFont | ImageFont.ImageFont
    try:
        font = ImageFont.truetype("DejaVuSans.ttf", 36)
    except OSError:
        font = ImageFont.load_default(size=36)
    image = Image.new("RGB", (int(font.getlength(sentence)) + 60, 100), "white")
    ImageDraw.Draw(image).text((30, 30), sentence, fill="black", font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
