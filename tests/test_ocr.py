"""OCR through a real worker on images rendered with known sentences."""

from __future__ import annotations

import base64
import os

import pytest

from conftest import make_user, sample_b64, text_png, worker_env
from studio.engines import ocr
from tests.processes import start_worker, stop_process, wait_for_log

SENTENCES = [
    "The quick brown fox jumps over the lazy dog",
    "Invoice 2041 is due on 12 March",
    "Nano Studio reads text from images",
]


def _render(sentence: str) -> str:
    return base64.b64encode(text_png(sentence)).decode()


def _distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        previous = current
    return previous[-1]


def _normalise(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.django_db(transaction=True)
def test_ocr_reads_known_sentences_with_under_5_percent_cer(api, celery_worker, mint):
    user = make_user("ocr@example.com", plan="pro")
    _, secret = mint(user)
    errors = characters = 0
    for sentence in SENTENCES:
        response = api(
            "post",
            "/api/ocr",
            key=secret,
            json={"image": _render(sentence), "language": "auto", "outputFormat": "json"},
        )
        assert response.status_code == 200, response.content
        data = response.json()["data"]
        assert data["status"] == "succeeded", data["error"]
        read = _normalise(data["result"]["text"])
        assert _normalise(" ".join(line["text"] for line in data["result"]["lines"])) == read
        errors += _distance(read, sentence)
        characters += len(sentence)
        for line in data["result"]["lines"]:
            assert 0 <= line["confidence"] <= 1
            assert len(line["box"]) == 4
    cer = errors / characters
    print(f"OCR character error rate: {cer:.2%} over {characters} characters")
    assert cer < 0.05


TESSERACT_SENTENCES = [
    ("de", "Größere Bilder kosten nicht mehr"),
    ("fra", "Le déjeuner coûte douze euros"),
]


@pytest.mark.skipif(
    not {"de", "fra"} <= ocr.tesseract_languages().keys(),
    reason="Tesseract with German and French data is not installed "
    "(apt-get install tesseract-ocr-deu tesseract-ocr-fra)",
)
@pytest.mark.django_db(transaction=True)
def test_tesseract_reads_other_languages_by_either_code(api, celery_worker, mint):
    user = make_user("tesseract@example.com", plan="pro")
    _, secret = mint(user)
    errors = characters = 0
    for language, sentence in TESSERACT_SENTENCES:
        response = api(
            "post",
            "/api/ocr",
            key=secret,
            json={"image": _render(sentence), "language": language, "outputFormat": "json"},
        )
        assert response.status_code == 200, response.content
        data = response.json()["data"]
        assert data["status"] == "succeeded", data["error"]
        assert data["result"]["language"] == language
        read = _normalise(data["result"]["text"])
        errors += _distance(read, sentence)
        characters += len(sentence)
        [line] = data["result"]["lines"]
        assert 0 <= line["confidence"] <= 1
        (left, top), _, (right, bottom), _ = line["box"]
        assert 0 <= left < right and 0 <= top < bottom
    cer = errors / characters
    print(f"Tesseract character error rate: {cer:.2%} over {characters} characters")
    assert cer < 0.05


def test_ocr_rejects_an_unreadable_language_and_bad_images_for_free(api, alice, alice_key):
    _, secret = alice_key
    response = api(
        "post",
        "/api/ocr",
        key=secret,
        json={"image": sample_b64(), "language": "xx"},
        headers={"Prefer": "respond-async"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"]["fields"] == {"language": "Unsupported language."}
    response = api("post", "/api/ocr", key=secret, json={"image": "nope", "language": "auto"})
    assert response.json()["error"]["code"] == "INVALID_IMAGE"
    response = api(
        "post", "/api/ocr", key=secret, json={"image": sample_b64(), "outputFormat": "pdf"}
    )
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    from studio.models import Job

    assert Job.objects.filter(user=alice).count() == 0


@pytest.mark.django_db(transaction=True)
def test_an_ocr_worker_loads_the_models_as_it_starts(tmp_path):
    """Each of its processes loads them before any job arrives (a new user's first OCR call
    once waited 34 s for them); a worker without the ocr queue never does."""
    logs = {name: tmp_path / f"{name}.log" for name in ("ocr", "maintenance")}
    workers = [
        start_worker(
            worker_env({"LOG_LEVEL": "INFO"}),
            "--queues",
            "images,ocr",
            "--concurrency",
            "2",
            log=logs["ocr"],
        ),
        start_worker(
            worker_env({"LOG_LEVEL": "INFO"}), "--queues", "maintenance", log=logs["maintenance"]
        ),
    ]
    try:
        wait_for_log(logs["ocr"], "OCR models loaded", count=2)
        wait_for_log(logs["maintenance"], "ready.")
    finally:
        for worker in workers:
            stop_process(worker)
    assert "OCR models loaded" not in logs["maintenance"].read_text()


def test_onnxruntime_threads_are_shared_among_the_workers_processes(monkeypatch):
    monkeypatch.setattr(ocr, "_threads", None)
    cores = len(os.sched_getaffinity(0))
    ocr.size_for_worker(2)
    assert ocr._threads == max(1, cores // 2)
    ocr.size_for_worker(64)
    assert ocr._threads == 1
