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
    # The status is swapped inside a live region that stays, so the final state is announced.
    page.locator("#job-live[aria-live=polite] #job-status-badge", has_text="Succeeded").wait_for(
        timeout=60_000
    )
    after = page.get_by_alt_text("The result, after Pencil Sketch")
    after.wait_for()
    assert page.evaluate("img => img.naturalWidth", after.element_handle()) == 480
    # The input (2.9 KB) was kept in the database with the job, and shows from there.
    before = page.get_by_alt_text("Your image, before").element_handle()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=before)
    assert page.evaluate("img => img.naturalWidth", before) == 480
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
    assert page.locator("#run-cost").inner_text().startswith("Costs 1 credit")
    page.get_by_role("button", name="Read text").click()
    page.locator("#job-status-badge", has_text="Succeeded").wait_for(timeout=60_000)
    assert page.locator("#ocr-text").inner_text().strip() == "Größere Bilder kosten nicht mehr"
    screenshot(page, "studio-ocr-result")


def test_a_refused_run_keeps_the_file_and_the_page_speaks_plainly(page, live_server, tmp_path):
    from billing import ledger
    from billing.models import CreditBalance

    user = make_user("studio-retry@example.com")
    CreditBalance.objects.filter(user=user).update(allowance=0)
    upload = tmp_path / "holiday.png"
    upload.write_bytes(sample_png((120, 80)))
    _log_in(page, email="studio-retry@example.com")
    page.goto("/studio/")
    page.get_by_text("Sepia", exact=True).click()
    assert page.locator("#run-cost").inner_text() == "Costs 1 credit · you have 0, not enough"
    page.get_by_label("1. Your image").set_input_files(str(upload))
    page.get_by_role("button", name="Run template").click()
    page.get_by_text("This job needs 1 credit(s); you have 0.").wait_for()
    kept = page.locator(".kept-file")
    assert "Using holiday.png from your last try" in kept.inner_text()
    assert page.get_by_role("radio", name="Sepia 1 credit").is_checked()  # the choice is kept
    screenshot(page, "studio-refused-keeps-file")

    ledger.grant_topup(user, 5, "test")
    page.get_by_role("button", name="Run template").click()  # no second pick of the file
    page.wait_for_url("**/jobs/*/")

    page.goto("/studio/")
    page.get_by_label("1. Your image").set_input_files(str(tmp_path / "holiday.png"))
    (tmp_path / "notes.png").write_bytes(b"not an image at all")
    page.get_by_label("1. Your image").set_input_files(str(tmp_path / "notes.png"))
    page.get_by_role("button", name="Run template").click()
    message = page.locator(".flash-error").first
    message.wait_for()
    assert message.inner_text().startswith("The image is not a readable PNG")
    assert "`" not in message.inner_text()
    assert page.locator(".kept-file").count() == 0  # an unusable file is not kept


def test_the_prompt_tab_says_why_it_is_unavailable(page, live_server, settings):
    settings.UPSTREAM_IMAGES_URL = settings.GEMINI_API_KEY = settings.OPENAI_API_KEY = ""
    make_user("studio-prompt@example.com")
    _log_in(page, email="studio-prompt@example.com")
    page.goto("/studio/?tab=prompt")
    notice = page.locator(".flash-warning")
    assert notice.inner_text().startswith("Unavailable. No image model is configured")
    assert "set GEMINI_API_KEY, OPENAI_API_KEY or UPSTREAM_IMAGES_URL" in notice.inner_text()
    assert page.get_by_role("button", name="Make image").is_disabled()
    # What it would cost on the first provider's default model.
    assert page.locator("#run-cost").inner_text() == "Costs 2 credits · 48 left after this run"
    screenshot(page, "studio-prompt-unavailable")


def test_make_an_image_from_a_prompt_on_a_chosen_model(page, live_server, fake, tmp_path):
    """Gemini configured (a local server that answers as Gemini does) and a real worker."""
    from conftest import worker_env
    from tests.processes import start_worker, stop_process

    make_user("studio-models@example.com", plan="pro")
    worker = start_worker(worker_env(fake.settings))
    try:
        _log_in(page, email="studio-models@example.com")
        page.goto("/studio/")
        # The expressions are there, at their model's price, and usable.
        laugh = page.locator(".tile", has_text="Joyful Laugh")
        assert laugh.locator(".tile-meta").inner_text() == "2 credits"
        assert laugh.locator("input").is_enabled()
        page.goto("/studio/?tab=prompt")
        assert page.locator(".flash-warning").count() == 0
        assert page.locator("#run-cost").inner_text() == "Costs 2 credits · 498 left after this run"
        page.get_by_label("Prompt").fill("a cute cat in a teacup, watercolour")
        page.get_by_label("Model").select_option("gemini-3-pro-image-preview")
        assert page.locator("#run-cost").inner_text() == "Costs 6 credits · 494 left after this run"
        page.get_by_label("Shape").select_option(label="Landscape (3:2)")
        screenshot(page, "studio-prompt")
        page.get_by_role("button", name="Make image").click()
        page.locator("#job-status-badge", has_text="Succeeded").wait_for(timeout=60_000)
        assert page.get_by_text("on gemini-3-pro-image-preview").is_visible()
        assert (
            page.locator("blockquote.prompt").inner_text() == "a cute cat in a teacup, watercolour"
        )
        page.get_by_alt_text("The result, after Text to image").wait_for()
        screenshot(page, "studio-prompt-result")
        page.set_viewport_size({"width": 390, "height": 844})
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(page, "studio-prompt-result-390")
        page.goto("/studio/?tab=prompt")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(page, "studio-prompt-390")
    finally:
        stop_process(worker)
    sent = fake.of("gemini")[-1]
    assert sent.path.endswith("/models/gemini-3-pro-image-preview:generateContent")
    assert sent.json["generationConfig"]["imageConfig"] == {"aspectRatio": "3:2"}
