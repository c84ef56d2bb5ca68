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
    settings.UPSTREAM_IMAGES_URL = ""
    make_user("studio-prompt@example.com")
    _log_in(page, email="studio-prompt@example.com")
    page.goto("/studio/?tab=prompt")
    assert page.get_by_text("No upstream image model is configured").is_visible()
    assert page.get_by_role("button", name="Make image").is_disabled()
    assert page.locator("#run-cost").inner_text() == "Costs 1 credit · 49 left after this run"
    screenshot(page, "studio-prompt-unavailable")
