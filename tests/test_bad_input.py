"""Bad input never crashes: each is a 4xx naming what is wrong, costs nothing, creates
nothing. And images are checked cheaply on the request path, decoded by the worker."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from apikeys.models import ApiKey
from billing.models import CreditBalance, LedgerEntry
from conftest import sample_b64, sample_png
from studio import actions
from studio.models import Job, JobInput, Template
from studio.tasks import run_job

ROOT = Path(__file__).resolve().parent.parent
ASYNC = {"Prefer": "respond-async"}


def _unchanged(user) -> None:
    assert Job.objects.filter(user=user).count() == 0
    assert CreditBalance.objects.get(user=user).total == 50
    assert not LedgerEntry.objects.filter(user=user, kind="debit").exists()


def _invalid(response, field: str, code: str = "VALIDATION_ERROR") -> dict:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert field in error["details"]["fields"], error
    return error


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


# --- NUL characters, forged cursors, dates out of range ---------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"image": "x", "template": "Sep\u0000ia", "templateType": "filters"}, "template"),
        ({"image": "x", "template": "Sepia", "templateType": "fil\u0000ters"}, "templateType"),
        ({"prompt": "a cat\u0000"}, "prompt"),
        ({"prompt": "a cat", "model": "\u0000"}, "model"),
    ],
)
def test_a_nul_character_in_a_generate_field_is_400(api, alice, alice_key, body, field):
    error = _invalid(api("post", "/api/generate", key=alice_key[1], json=body), field)
    assert "NUL" in error["details"]["fields"][field]
    _unchanged(alice)


def test_a_nul_character_in_a_key_name_or_ocr_language_is_400(api, alice, alice_key):
    response = api(
        "post", "/api/keys", key=alice_key[1], json={"name": "ci\u0000", "preset": "read"}
    )
    _invalid(response, "name")
    assert ApiKey.objects.filter(user=alice).count() == 1
    key = alice_key[0]
    _invalid(
        api("patch", f"/api/keys/{key.pk}", key=alice_key[1], json={"name": "x\u0000"}), "name"
    )
    assert ApiKey.objects.get(pk=key.pk).name == "alice full"
    response = api(
        "post", "/api/ocr", key=alice_key[1], json={"image": sample_b64(), "language": "en\u0000"}
    )
    _invalid(response, "language")
    _unchanged(alice)


@pytest.mark.parametrize(
    "cursor",
    [
        base64.urlsafe_b64encode(b"x|y").decode(),
        base64.urlsafe_b64encode(b"2026-11-20T10:00:00+00:00|not-a-uuid").decode(),
        base64.urlsafe_b64encode(
            b"2026-11-20T10:00:00|3fa85f64-5717-4562-b3fc-2c963f66afa6"
        ).decode(),
        base64.urlsafe_b64encode(b"a|b|c").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe|x").decode(),
        "%00",
        "garbage",
        "",  # never issued: the first page is asked for without a cursor (the fuzzer's find)
    ],
)
def test_a_forged_cursor_is_400(api, alice_key, cursor):
    _invalid(api("get", f"/api/jobs?cursor={cursor}", key=alice_key[1]), "cursor")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("to=9999-12-31", "to"),
        ("to=0001-01-01", "to"),
        ("from=0001-01-01&to=2026-11-20", "from"),
        ("from=1999-12-31", "from"),
    ],
)
def test_usage_dates_out_of_range_are_400(api, alice_key, query, field):
    _invalid(api("get", f"/api/usage?{query}", key=alice_key[1]), field)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/requests?status=2xx&status=4xx", "status"),
        ("/api/requests?endpoint=GET+/api/jobs&endpoint=", "endpoint"),
        ("/api/jobs?limit=5&limit=500", "limit"),
        ("/api/usage?group_by=key&group_by=endpoint", "group_by"),
    ],
)
def test_a_repeated_query_parameter_is_400_not_its_last_value(api, alice_key, path, field):
    """Each parameter is published as one value; a second one used to win silently."""
    error = _invalid(api("get", path, key=alice_key[1]), field)
    assert "more than once" in error["details"]["fields"][field]


def test_a_repeated_query_parameter_without_a_key_is_still_401(api):
    response = api("get", "/api/requests?status=2xx&status=4xx")
    assert (response.status_code, response.json()["error"]["code"]) == (401, "MISSING_API_KEY")


# --- Unknown fields -------------------------------------------------------------------------


def test_a_misspelt_field_is_refused_not_ignored(api, alice, alice_key):
    """`expires_at` is not a field (`expires_in_days` is): it used to make a key that never
    expires."""
    response = api(
        "post",
        "/api/keys",
        key=alice_key[1],
        json={"name": "ci", "preset": "read", "expires_at": "2026-12-01T00:00:00Z"},
    )
    error = _invalid(response, "expires_at")
    assert "expires_at" in error["message"]
    assert ApiKey.objects.filter(user=alice).count() == 1


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/generate", {"prompt": "a cat", "webhook_url": "https://example.com"}),
        ("post", "/api/ocr", {"image": "x", "lang": "de"}),
        ("patch", "/api/keys/{key}", {"enabled": False, "scope": ["generate"]}),  # a typo
        ("post", "/api/keys/{key}/roll", {"grace": "1h", "revoke_old": True}),
    ],
)
def test_every_body_refuses_unknown_fields(api, alice, alice_key, method, path, body):
    key = alice_key[0]
    extra = (set(body) - {"prompt", "image", "enabled", "grace"}).pop()
    _invalid(api(method, path.format(key=key.pk), key=alice_key[1], json=body), extra)
    key.refresh_from_db()
    assert (key.status, key.rolled_at) == ("active", None)
    _unchanged(alice)


# --- Images -----------------------------------------------------------------------------


def _generate(api, secret, image: str, **headers):
    body = {"image": image, "template": "Grayscale", "templateType": "filters"}
    return api("post", "/api/generate", key=secret, json=body, headers={**ASYNC, **headers})


def test_a_data_url_whose_declared_type_is_not_its_content_is_refused(api, alice, alice_key):
    response = _generate(api, alice_key[1], "data:image/svg+xml;base64," + sample_b64())
    error = _invalid(response, "image", "INVALID_IMAGE")
    assert "image/svg+xml" in error["message"]
    response = _generate(api, alice_key[1], "data:image/jpeg;base64," + sample_b64())
    assert (
        "declares image/jpeg, but the image is a PNG"
        in _invalid(response, "image", "INVALID_IMAGE")["message"]
    )
    _unchanged(alice)
    assert _generate(api, alice_key[1], "data:image/png;base64," + sample_b64()).status_code == 202


def test_an_animated_gif_over_the_frame_limit_is_refused(api, alice, alice_key, settings):
    frames = []
    for n in range(settings.IMAGE_MAX_FRAMES + 1):
        frame = Image.new("P", (40, 40), 0)
        frame.putpixel((n % 40, n // 40), 1 + n % 200)
        frames.append(frame)
    raw = _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])
    error = _invalid(_generate(api, alice_key[1], _b64(raw)), "image", "INVALID_IMAGE")
    assert (
        error["message"] == f"Animated images may have at most {settings.IMAGE_MAX_FRAMES} frames."
    )
    _unchanged(alice)
    ok = _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:10])
    assert _generate(api, alice_key[1], _b64(ok)).status_code == 202


@pytest.mark.parametrize("animated", [False, True], ids=["still", "animated"])
def test_a_png_with_a_damaged_chunk_is_refused_before_it_costs_anything(
    api, alice, alice_key, animated
):
    """The quick check verifies the chunks' checksums: at once for a still image, and after
    opening it again for an animated one, whose frames were sought in first."""
    frames = [Image.new("RGB", (40, 40), (n * 60, 0, 0)) for n in range(3)]
    options = {"save_all": True, "append_images": frames[1:]} if animated else {}
    raw = _encoded(frames[0], "PNG", **options)
    at = raw.index(b"IDAT") + 6  # a byte of the first image data: its CRC no longer matches
    damaged = raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1 :]
    error = _invalid(_generate(api, alice_key[1], _b64(damaged)), "image", "INVALID_IMAGE")
    assert error["message"] == "`image` is not a readable PNG, JPEG, WebP or GIF image."
    _unchanged(alice)
    assert _generate(api, alice_key[1], _b64(raw)).status_code == 202


_MEASURE = """
import base64, io, json, resource, sys, time
import django
django.setup()
from PIL import Image
from studio.images import check_image
image = Image.new("1", (20_000, 1_200))
buffer = io.BytesIO()
image.save(buffer, format="PNG")
del image
value = base64.b64encode(buffer.getvalue()).decode()
check_image(base64.b64encode(open(sys.argv[1], "rb").read()).decode())  # warm the plugins
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
checked = check_image(value)
elapsed_ms = (time.perf_counter() - started) * 1000
grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"bytes": len(checked.raw), "ms": elapsed_ms, "grown_kb": grown_kb}))
"""


def test_checking_a_4_kb_24_megapixel_png_costs_under_50_ms_and_30_mb(tmp_path):
    """Measured in a process of its own, so peak memory is this check's alone."""
    sample = tmp_path / "warm.png"
    sample.write_bytes(sample_png())
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(sample)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "nanostudio.settings"},
    )
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["bytes"] < 8_000
    assert measured["ms"] < 50, measured
    assert measured["grown_kb"] < 30 * 1024, measured


def test_a_truncated_image_passes_the_quick_check_then_fails_its_job_refunded(
    api, alice, alice_key
):
    raw = _encoded(Image.open(io.BytesIO(sample_png())).convert("RGB"), "JPEG")
    truncated = raw[: len(raw) * 2 // 3]
    response = _generate(api, alice_key[1], _b64(truncated))
    assert response.status_code == 202, response.content
    assert CreditBalance.objects.get(user=alice).total == 49
    job_id = response.json()["data"]["id"]
    run_job(job_id)  # the task body, in this process
    job = Job.objects.get(pk=job_id)
    assert (job.status, job.error_code) == ("failed", "INVALID_IMAGE")
    assert job.error_message == "The image could not be decoded: it is truncated or damaged."
    assert CreditBalance.objects.get(user=alice).total == 50


def _photo(size=(60, 30)) -> Image.Image:
    image = Image.new("RGB", size, (200, 30, 30))
    image.paste((30, 30, 200), (0, 0, size[0] // 2, size[1]))  # blue left half
    return image


def test_a_phone_photo_as_mpo_is_accepted_as_jpeg(alice):
    raw = _encoded(_photo(), "MPO", save_all=True, append_images=[_photo()])
    assert Image.open(io.BytesIO(raw)).format == "MPO"
    job = actions.submit_generate(
        alice, None, image=_b64(raw), template=Template.objects.get(name="Grayscale"), params={}
    ).job
    assert JobInput.objects.get(job=job).extension == "jpg"
    run_job(str(job.pk))
    job.refresh_from_db()
    assert job.status == "succeeded", job.error_message


def test_the_exif_orientation_is_applied_so_portraits_stay_upright(alice):
    """A 60x30 landscape sensor image tagged 'rotate 90° clockwise' (orientation 6) is a
    30x60 portrait with the blue half on top."""
    exif = Image.Exif()
    exif[0x0112] = 6
    raw = _encoded(_photo(), "JPEG", exif=exif, quality=95)
    job = actions.submit_generate(
        alice, None, image=_b64(raw), template=Template.objects.get(name="Invert"), params={}
    ).job
    run_job(str(job.pk))
    job.refresh_from_db()
    from studio import storage

    output = storage.open_image(job.output_file).convert("RGB")
    assert output.size == (30, 60)
    top, bottom = output.getpixel((15, 5)), output.getpixel((15, 55))
    assert top[2] < 100 < top[0]  # inverted blue: reddish-yellow on top
    assert bottom[0] < 100  # inverted red below


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "ci", "preset": "read", "expires_in_days": True}, "expires_in_days"),
        ({"name": "ci", "preset": "read", "expires_in_days": "30"}, "expires_in_days"),
        ({"name": 7, "preset": "read"}, "name"),
    ],
)
def test_body_fields_are_not_coerced_from_other_types(api, alice, alice_key, body, field):
    """`true` is not 1 and "30" is not 30: found by `make fuzz`, a boolean made a key that
    expired the next day."""
    _invalid(api("post", "/api/keys", key=alice_key[1], json=body), field)
    assert ApiKey.objects.filter(user=alice).count() == 1
    key = alice_key[0]
    _invalid(
        api("patch", f"/api/keys/{key.pk}", key=alice_key[1], json={"enabled": "no"}), "enabled"
    )
    assert ApiKey.objects.get(pk=key.pk).status == "active"
