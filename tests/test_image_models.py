"""The image-model engines (Gemini, OpenAI, an OpenAI-compatible server) against a real local
server that answers as each provider does, with jobs run by a real worker."""

from __future__ import annotations

import base64
import io
import threading
import time

import pytest
from google import genai
from google.genai import types as genai_types
from openai import BadRequestError, OpenAI
from openai.types import image_edit_params, image_generate_params
from PIL import Image

from billing.models import CreditBalance
from conftest import make_user, sample_b64, sample_png, usage_events, worker_env
from studio import engines
from studio.engines import gemini, providers
from studio.models import Job, Template
from tests.fake_providers import COLOURS, COMPAT_KEY, GEMINI_KEY, KEYS, OPENAI_KEY
from tests.processes import start_worker, stop_process


def _worker(fake, tmp_path):
    """A worker configured for the fake providers, logging every line (DEBUG) to a file."""
    log = tmp_path / "worker.log"
    return start_worker(worker_env({**fake.settings, "LOG_LEVEL": "DEBUG"}), log=log), log


def _image_of(api, secret, data) -> Image.Image:
    response = api("get", data["output_url"], key=secret)
    assert response.status_code == 200
    return Image.open(io.BytesIO(b"".join(response.streaming_content))).convert("RGB")


def _generate(api, secret, body, **headers):
    return api("post", "/api/generate", key=secret, json=body, headers=headers)


EXPRESSION = {"image": sample_b64(), "template": "Joyful Laugh", "templateType": "expressions"}


def test_each_provider_runs_an_expression_and_a_prompt_on_a_worker(
    api, db, mint, fake, settings, tmp_path, transactional_db
):
    user = make_user("models@example.com", plan="pro")
    _, secret = mint(user)
    laugh = Template.objects.get(name="Joyful Laugh")
    worker, _ = _worker(fake, tmp_path)
    try:
        for provider, colour in (
            ("gemini", "gemini"),
            ("openai", "openai"),
            ("upstream", "compat"),
        ):
            settings.IMAGE_PROVIDER = provider  # where `auto` templates and prompts go
            response = _generate(api, secret, EXPRESSION)
            assert response.status_code == 200, response.content
            data = response.json()["data"]
            assert data["status"] == "succeeded", data["error"]
            assert data["result"]["provider"] == provider, Job.objects.get(pk=data["id"]).params
            assert _image_of(api, secret, data).getpixel((3, 3)) == COLOURS[colour]
            model = providers.get(provider).default_model
            assert data["credits"] == model.credit_cost  # the template costs its model's credits
            response = _generate(api, secret, {"prompt": "a cute cat", "aspect_ratio": "3:2"})
            data = response.json()["data"]
            assert (response.status_code, data["status"]) == (200, "succeeded"), response.content
            assert data["result"] == {
                "provider": provider,
                "model": model.name,
                "provider_attempts": 1,
            }
    finally:
        stop_process(worker)

    # What each provider received: the template's instruction, the image, the model.
    edit, prompt = fake.of("gemini")
    assert edit.path == "/gemini/v1beta/models/gemini-2.5-flash-image:generateContent"
    assert edit.headers["x-goog-api-key"] == GEMINI_KEY
    parts = edit.json["contents"][0]["parts"]
    assert parts[0] == {"text": laugh.prompt}
    assert base64.b64decode(parts[1]["inline_data"]["data"]).startswith(b"\x89PNG")
    assert edit.json["generationConfig"] == {"responseModalities": ["IMAGE"]}
    assert prompt.json["contents"][0]["parts"] == [{"text": "a cute cat"}]
    assert prompt.json["generationConfig"]["imageConfig"] == {"aspectRatio": "3:2"}
    for seen in (edit, prompt):  # as the Gemini SDK's own types define the request
        genai_types.Content.model_validate(seen.json["contents"][0])
        genai_types.GenerateContentConfig.model_validate(seen.json["generationConfig"])

    for name, key, model_name in (
        ("openai", OPENAI_KEY, "gpt-image-1"),
        ("compat", COMPAT_KEY, "gpt-image-1"),
    ):
        edit, prompt = fake.of(name)
        assert edit.path == f"/{name}/v1/images/edits"
        assert edit.headers["Authorization"] == f"Bearer {key}"
        assert (edit.form["model"], edit.form["prompt"]) == (model_name, laugh.prompt)
        same = Image.open(io.BytesIO(edit.files["image"])).convert("RGB")
        assert same.size == Image.open(io.BytesIO(sample_png())).size
        assert set(edit.form) | set(edit.files) <= set(
            image_edit_params.ImageEditParamsBase.__annotations__
        )
        assert prompt.path == f"/{name}/v1/images/generations"
        assert prompt.json["prompt"] == "a cute cat" and prompt.json["size"] == "1536x1024"
        assert prompt.json["model"] == model_name
        assert set(prompt.json) <= set(
            image_generate_params.ImageGenerateParamsBase.__annotations__
        )
    # gpt-image models always answer base64 and refuse `response_format`; servers get asked.
    assert "response_format" not in fake.of("openai")[1].json
    assert fake.of("compat")[1].json["response_format"] == "b64_json"
    spent = 2 * (2 + 4 + 2)  # gemini 2, gpt-image-1 4, the server's model 2; template and prompt
    assert CreditBalance.objects.get(user=user).total == 500 - spent


def test_the_fake_providers_answer_as_the_official_sdks_expect(fake):
    """The shapes the engines are tested against are the ones the providers' SDKs speak."""
    client = genai.Client(
        api_key="sdk-key", http_options=genai_types.HttpOptions(base_url=f"{fake.base}/gemini")
    )
    answer = client.models.generate_content(
        model="gemini-2.5-flash-image",
        contents=[
            "Make him laugh",
            genai_types.Part.from_bytes(data=sample_png(), mime_type="image/png"),
        ],
        config=genai_types.GenerateContentConfig(
            response_modalities=["IMAGE"], image_config=genai_types.ImageConfig(aspect_ratio="3:2")
        ),
    )
    inline = answer.candidates[0].content.parts[1].inline_data
    assert Image.open(io.BytesIO(inline.data)).getpixel((1, 1)) == COLOURS["gemini"]
    sdk_request = fake.of("gemini")[-1]
    assert sdk_request.headers["x-goog-api-key"] == "sdk-key"
    assert sdk_request.path.endswith("/models/gemini-2.5-flash-image:generateContent")
    assert sdk_request.json["generationConfig"] == {
        "responseModalities": ["IMAGE"],
        "imageConfig": {"aspectRatio": "3:2"},
    }

    openai = OpenAI(api_key="sdk-key", base_url=fake.urls["OPENAI_BASE_URL"], max_retries=0)
    made = openai.images.generate(model="gpt-image-1", prompt="a cat", size="1024x1024")
    assert Image.open(io.BytesIO(base64.b64decode(made.data[0].b64_json))).size == (32, 32)
    edited = openai.images.edit(
        model="gpt-image-1", image=("i.png", sample_png(), "image/png"), prompt="laugh"
    )
    assert edited.data[0].b64_json
    assert [seen.path for seen in fake.of("openai")] == [
        "/openai/v1/images/generations",
        "/openai/v1/images/edits",
    ]
    assert set(fake.of("openai")[1].form) == {"model", "prompt"}  # what ours sends, and more
    fake.plan("openai", "refuse")
    with pytest.raises(BadRequestError) as refused:
        openai.images.generate(model="gpt-image-1", prompt="something refused")
    assert refused.value.code == "moderation_blocked"  # the SDK reads our refusal as OpenAI's


def test_busy_broken_and_refusing_providers_fail_the_right_way_and_leak_no_key(
    api, db, mint, fake, settings, tmp_path, transactional_db, caplog
):
    caplog.set_level("DEBUG")
    user = make_user("flaky@example.com", plan="pro")
    _, secret = mint(user)
    worker, log = _worker(fake, tmp_path)
    answers = []
    try:
        settings.IMAGE_PROVIDER = "gemini"
        fake.plan("gemini", "429")  # Retry-After: 1, then fine
        started = time.monotonic()
        response = _generate(api, secret, EXPRESSION)
        answers.append(response.content.decode())
        data = response.json()["data"]
        assert data["status"] == "succeeded" and data["result"]["provider_attempts"] == 2
        first, second = fake.of("gemini")
        assert second.at - first.at >= 1.0  # the provider's Retry-After was honoured
        assert time.monotonic() - started < 15

        settings.IMAGE_PROVIDER = "openai"
        fake.plan("openai", "500", "500", "500")
        response = _generate(api, secret, {"prompt": "a cat"})
        answers.append(response.content.decode())
        error = response.json()["error"]
        assert (response.status_code, error["code"]) == (502, "ENGINE_ERROR")
        assert error["message"].startswith("OpenAI answered 500, after 3 attempt(s).")
        assert error["details"]["refunded"] is True and len(fake.of("openai")) == 3

        for provider, outcome, engine in (
            ("gemini", "refuse", "gemini"),
            ("gemini", "refuse-image", "gemini"),
            ("openai", "refuse", "openai"),
            ("compat", "refuse", "upstream"),
        ):
            settings.IMAGE_PROVIDER = engine
            fake.plan(provider, outcome)
            response = _generate(api, secret, EXPRESSION)
            answers.append(response.content.decode())
            error = response.json()["error"]
            assert (response.status_code, error["code"]) == (422, "CONTENT_REJECTED"), error
            assert "refused" in error["message"] and error["details"]["refunded"] is True

        settings.IMAGE_PROVIDER = "gemini"
        fake.plan("gemini", "garbage")
        response = _generate(api, secret, {"prompt": "a cat"})
        answers.append(response.content.decode())
        error = response.json()["error"]
        assert (response.status_code, error["code"]) == (502, "ENGINE_ERROR")
        assert "not an image" in error["message"]
    finally:
        stop_process(worker)

    # Only the one success was paid for: every failure was refunded.
    assert CreditBalance.objects.get(user=user).total == 500 - 2
    assert Job.objects.filter(user=user, status="failed", refunded_at__isnull=False).count() == 6
    # No provider key anywhere: worker log lines, this process's, job fields, usage rows, bodies.
    worker_log = log.read_text()
    assert "image model call retried" in worker_log  # the capture saw the engine's own lines
    jobs = [
        f"{job.params} {job.result} {job.error_code} {job.error_message}"
        for job in Job.objects.filter(user=user)
    ]
    calls = [str(row.__dict__) for row in usage_events()]
    text = "\n".join([worker_log, caplog.text, *answers, *jobs, *calls])
    for key in KEYS:
        assert key not in text


def test_a_refused_key_and_a_malformed_answer_name_no_key(fake, settings):
    """In process, straight through the engine: a provider that refuses the server's key."""
    settings.GEMINI_API_KEY = "AIza-wrong"

    class Refusing:
        status_code = 403

        def json(self):
            return {
                "error": {"message": "API key AIza-wrong not valid.", "status": "PERMISSION_DENIED"}
            }

    with pytest.raises(engines.EngineError) as error:
        gemini.read_answer(Refusing())
    assert str(error.value) == "Gemini refused this server's key (403)."

    class Echoing(Refusing):
        status_code = 400

    with pytest.raises(engines.EngineError) as error:
        gemini.read_answer(Echoing())
    assert "AIza-wrong" not in str(error.value) and "[redacted]" in str(error.value)


def test_prompt_requests_name_models_the_server_offers(api, alice_key, fake, settings):
    _, secret = alice_key
    models = api("get", "/api/models", key=secret).json()["data"]["models"]
    assert [m["name"] for m in models] == [
        "gemini-2.5-flash-image",
        "gemini-3-pro-image-preview",
        "gpt-image-1",
        "gpt-image-1-mini",
        "gpt-image-1",
    ]
    assert models[0] | {"aspect_ratios": None, "sizes": None} == {
        "name": "gemini-2.5-flash-image",
        "label": "Nano Banana (Gemini 2.5 Flash Image)",
        "provider": "gemini",
        "credit_cost": 2,
        "default": True,
        "aspect_ratios": None,
        "sizes": None,
    }
    assert [m["default"] for m in models].count(True) == 1
    # gpt-4 (seed 003's example) is not an image model: a clear 400, nothing charged.
    response = _generate(api, secret, {"prompt": "a cat", "model": "gpt-4"})
    error = response.json()["error"]
    assert (response.status_code, error["code"]) == (400, "VALIDATION_ERROR")
    assert "gpt-image-1-mini" in error["message"] and "gemini-2.5-flash-image" in error["message"]
    assert error["details"]["fields"] == {"model": "Unknown image model."}
    for body, field in (
        ({"prompt": "a cat", "model": "gpt-image-1", "aspect_ratio": "16:9"}, "aspect_ratio"),
        ({"prompt": "a cat", "model": "gpt-image-1", "size": "512x512"}, "size"),
        ({"prompt": "a cat", "aspect_ratio": "7:3"}, "aspect_ratio"),
    ):
        response = _generate(api, secret, body)
        assert response.status_code == 400, body
        assert field in response.json()["error"]["details"]["fields"], response.content
    response = _generate(api, secret, {"prompt": "a cat", "size": "512x512", "aspect_ratio": "1:1"})
    assert response.status_code == 400
    response = _generate(api, secret, {**EXPRESSION, "model": "gpt-image-1"})
    assert response.status_code == 400
    assert "a template brings its own" in response.json()["error"]["message"]
    assert Job.objects.count() == 0
    assert not fake.seen

    settings.GEMINI_API_KEY = settings.OPENAI_API_KEY = settings.UPSTREAM_IMAGES_URL = ""
    assert api("get", "/api/models", key=secret).json()["data"]["models"] == []
    response = _generate(api, secret, {"prompt": "a cat"})
    assert (response.status_code, response.json()["error"]["code"]) == (503, "ENGINE_UNAVAILABLE")
    assert "set GEMINI_API_KEY" in response.json()["error"]["message"]


def test_costs_follow_the_model_unless_the_template_sets_its_own(api, db, mint, fake, settings):
    """Checked at accept time (nothing runs: there is no worker); each accepted job is
    charged its model's cost, or the template's own."""
    alice = make_user("costs@example.com", plan="pro")
    _, secret = mint(alice)
    headers = {"Prefer": "respond-async"}
    settings.IMAGE_PROVIDER = "openai"
    assert _generate(api, secret, EXPRESSION, **headers).json()["data"]["credits"] == 4
    body = {"prompt": "a cat", "model": "gemini-3-pro-image-preview"}
    data = _generate(api, secret, body, **headers).json()["data"]
    assert data["credits"] == 6
    assert Job.objects.get(pk=data["id"]).params["engine"] == "gemini"  # routed by its model
    laugh = Template.objects.get(name="Joyful Laugh")
    laugh.credit_cost = 3
    laugh.save()  # as the admin does: the catalogue in memory hears of it
    assert _generate(api, secret, EXPRESSION, **headers).json()["data"]["credits"] == 3
    assert CreditBalance.objects.get(user=alice).total == 500 - 4 - 6 - 3


def test_templates_name_what_they_need_when_unconfigured(api, alice_key, settings):
    settings.GEMINI_API_KEY = settings.OPENAI_API_KEY = settings.UPSTREAM_IMAGES_URL = ""
    Template.objects.create(
        name="Nano Laugh", type="expressions", engine="gemini", prompt="Laugh.", sort_order=999
    )
    _, secret = alice_key
    types = api("get", "/api/templates", key=secret).json()["data"]["types"]
    by_name = {t["name"]: t for group in types for t in group["templates"]}
    assert by_name["Joyful Laugh"]["unavailable_reason"] == providers.NO_PROVIDER
    assert by_name["Nano Laugh"]["unavailable_reason"] == "Needs a Gemini key: set GEMINI_API_KEY."
    expressions = [t for t in by_name.values() if t["type"] == "expressions"]
    assert {
        "Joyful Laugh",
        "Gentle Smile",
        "Surprised",
        "Thoughtful",
        "Wink",
        "Serious",
        "Shy",
        "Angry",
    } <= {t["name"] for t in expressions}
    styles = {
        t["name"] for t in by_name.values() if t["engine"] == "auto" and t["type"] == "styles"
    }
    assert styles >= {"Watercolor", "Anime", "Clay", "Studio Portrait"}
    assert all(t["credit_cost"] == 2 for t in expressions)  # an image model's cost, not 1


def test_template_admin_rules(db):
    from django.core.exceptions import ValidationError

    cases = [
        (Template(name="x", type="expressions", engine="auto"), "prompt"),
        (
            Template(name="x", type="expressions", engine="auto", prompt="p", model="gpt-image-1"),
            "model",
        ),
        (
            Template(name="x", type="expressions", engine="openai", prompt="p", model="dall-e-9"),
            "model",
        ),
    ]
    for template, field in cases:
        with pytest.raises(ValidationError) as error:
            template.full_clean()
        assert field in error.value.message_dict
    Template(
        name="x", type="expressions", engine="openai", prompt="p", model="gpt-image-1-mini"
    ).full_clean()


def test_retry_after_as_seconds_or_a_date():
    class Answer:
        def __init__(self, value):
            self.headers = {"Retry-After": value}

    assert providers.retry_after_s(Answer("2")) == 2
    assert providers.retry_after_s(Answer("9999")) == providers.RETRY_AFTER_CAP_S
    assert providers.retry_after_s(Answer("Wed, 21 Oct 2015 07:28:00 GMT")) == 0
    assert providers.retry_after_s(Answer("soon")) is None
    assert all(0 <= providers.backoff_s(n) <= providers.BACKOFF_CAP_S for n in range(1, 10))


def test_a_provider_never_gets_more_calls_at_once_than_its_limit(fake, settings):
    """Eight calls from eight threads against a limit of 2: never more than 2 at once at the
    provider (in production mode the slots are in Redis, shared by every worker)."""
    settings.GEMINI_MAX_CONCURRENCY = 2
    fake.delay_s = 0.3
    results = []

    def call():
        results.append(gemini.run(None, None, {"prompt": "a cat"}))

    threads = [threading.Thread(target=call) for _ in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len(fake.of("gemini")) == 8
    assert fake.peak == 2
    assert time.monotonic() - started >= 4 * 0.3  # 8 calls, 2 at a time
