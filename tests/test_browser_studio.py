from __future__ import annotations

import pytest

from conftest import make_user, sample_png, screenshot, text_png
from studio.engines import ocr
from tests.test_browser_keys import _log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_run_a_template_in_the_studio_and_see_the_result(page, celery_worker, tmp_path):
    make_user("studio-browser@example.com")
    upload = tmp_path / "photo.png"
    upload.write_bytes(sample_png((480, 320)))
    _log_in(page, email="studio-browser@example.com")
    page.get_by_role("link", name="Studio", exact=True).first.click()
    page.get_by_label("1. Your image").set_input_files(str(upload))
    page.get_by_text("Pencil Sketch").click()
    screenshot(page, "studio")
    page.get_by_role("button", name="Run template").click()
    page.locator("#job-status-badge", has_text="Succeeded").wait_for(timeout=60_000)
    after = page.get_by_alt_text("The result, after Pencil Sketch")
    after.wait_for()
    assert page.evaluate("img => img.naturalWidth", after.element_handle()) == 480
    assert page.get_by_text("(refunded)").count() == 0
    screenshot(page, "studio-result")
    page.get_by_role("link", name="All jobs").click()
    page.get_by_role("link", name="Pencil Sketch").wait_for()
    screenshot(page, "jobs")


@pytest.mark.skipif(
    "de" not in ocr.tesseract_languages(),
    reason="Tesseract with German data is not installed (apt-get install tesseract-ocr-deu)",
)
def test_read_german_text_in_the_studio(page, celery_worker, tmp_path):
    make_user("ocr-browser@example.com", plan="pro")
    upload = tmp_path / "letter.png"
    upload.write_bytes(text_png("Größere Bilder kosten nicht mehr"))
    _log_in(page, email="ocr-browser@example.com")
    page.goto("/studio/?tab=ocr")
    page.get_by_label("Image with text").set_input_files(str(upload))
    page.get_by_label("Language").select_option(label="German")
    screenshot(page, "studio-ocr")
    page.get_by_role("button", name="Read text · 1 credit").click()
    page.locator("#job-status-badge", has_text="Succeeded").wait_for(timeout=60_000)
    assert page.locator("#ocr-text").inner_text().strip() == "Größere Bilder kosten nicht mehr"
    screenshot(page, "studio-ocr-result")
