from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import (
    SECRET_SESSION_KEY,
    format_hotp_value,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.urls import reverse

from accounts.models import User
from billing.models import Subscription

PASSWORD = "a-long-and-fine-passphrase"


def _link(body: str) -> str:
    match = re.search(r"https?://[^/\s]+(/accounts/confirm-email/[^\s]+/)", body)
    assert match, body
    return match.group(1)


def reauthenticate(client, password: str = "correct horse battery") -> None:
    """Sensitive pages ask for the password again, even right after logging in."""
    response = client.post(reverse("account_reauthenticate"), {"password": password})
    assert response.status_code == 302, response.content


def _sign_up(client, email: str = "dora@example.com"):
    return client.post(reverse("account_signup"), {"email": email, "password1": PASSWORD})


@pytest.mark.django_db
def test_it_signs_up_verifies_and_lands_on_the_dashboard(client, mailoutbox):
    response = _sign_up(client)
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    user = User.objects.get(email="dora@example.com")
    assert not EmailAddress.objects.get(user=user).verified
    assert not Subscription.objects.filter(user=user).exists()

    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["dora@example.com"]
    link = _link(mailoutbox[0].body)
    assert client.get(link).status_code == 200
    response = client.post(link)
    # Opened in the browser that signed up: signed in at once, straight to the dashboard.
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:dashboard")
    assert EmailAddress.objects.get(user=user).verified
    assert Subscription.objects.get(user=user).plan.slug == "free"
    page = client.get(reverse("accounts:dashboard"))
    assert page.status_code == 200
    assert b"Free" in page.content
    assert b"50 credits a month" in page.content


@pytest.mark.django_db
def test_a_link_opened_elsewhere_verifies_but_asks_for_the_password(client, mailoutbox):
    from django.test import Client

    _sign_up(client)
    elsewhere = Client()
    response = elsewhere.post(_link(mailoutbox[0].body))
    assert response["Location"] == reverse("account_login")
    assert EmailAddress.objects.get(email="dora@example.com").verified
    assert elsewhere.get(reverse("accounts:dashboard")).status_code == 302  # not signed in
    response = elsewhere.post(
        reverse("account_login"), {"login": "dora@example.com", "password": PASSWORD}
    )
    assert response["Location"] == reverse("accounts:dashboard")


@pytest.mark.django_db
def test_it_does_not_log_in_before_verification(client, mailoutbox):
    _sign_up(client)
    client.logout()
    response = client.post(
        reverse("account_login"), {"login": "dora@example.com", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert client.get(reverse("accounts:dashboard")).status_code == 302


def test_it_logs_in_and_out(client, alice):
    response = client.post(
        reverse("account_login"),
        {"login": "alice@example.com", "password": "correct horse battery"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:dashboard")
    assert client.get(reverse("accounts:dashboard")).status_code == 200
    client.post(reverse("account_logout"))
    response = client.get(reverse("accounts:dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_it_rate_limits_failed_logins(client, alice):
    for _ in range(5):
        response = client.post(
            reverse("account_login"), {"login": "alice@example.com", "password": "wrong"}
        )
        assert b"Too many failed login attempts" not in response.content
    response = client.post(
        reverse("account_login"),
        {"login": "alice@example.com", "password": "correct horse battery"},
    )
    assert response.status_code == 200
    assert b"Too many failed login attempts" in response.content


def test_it_sends_a_password_reset_link_that_works(client, alice, mailoutbox):
    client.post(reverse("account_reset_password"), {"email": "alice@example.com"})
    assert len(mailoutbox) == 1
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/[^\s]+/)", mailoutbox[0].body)
    response = client.get(link.group(1), follow=True)
    form_url = response.redirect_chain[-1][0]
    response = client.post(
        form_url, {"password1": "brand-new-passphrase-9", "password2": "brand-new-passphrase-9"}
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("brand-new-passphrase-9")


def test_it_changes_email_after_verifying_the_new_address(client, alice, mailoutbox):
    client.force_login(alice)
    client.post(reverse("account_email"), {"action_add": "", "email": "alice@new.example.com"})
    assert len(mailoutbox) == 1
    client.post(_link(mailoutbox[0].body))
    alice.refresh_from_db()
    assert alice.email == "alice@new.example.com"


def test_it_turns_on_totp_and_then_asks_for_it(client, alice):
    client.post(
        reverse("account_login"),
        {"login": "alice@example.com", "password": "correct horse battery"},
    )
    assert client.get(reverse("mfa_activate_totp")).status_code == 302
    reauthenticate(client)
    assert client.get(reverse("mfa_activate_totp")).status_code == 200
    secret = client.session[SECRET_SESSION_KEY]
    code = format_hotp_value(hotp_value(secret, next(yield_hotp_counters_from_time())))
    response = client.post(reverse("mfa_activate_totp"), {"code": code})
    assert response.status_code == 302
    assert Authenticator.objects.filter(user=alice, type="totp").exists()
    recovery = Authenticator.objects.get(user=alice, type="recovery_codes")
    unused = recovery.wrap().get_unused_codes()
    assert len(unused) == 10

    client.post(reverse("account_logout"))
    response = client.post(
        reverse("account_login"),
        {"login": "alice@example.com", "password": "correct horse battery"},
    )
    assert response["Location"] == reverse("mfa_authenticate")
    assert client.get(reverse("accounts:dashboard")).status_code == 302
    # A recovery code stands in for the authenticator app.
    response = client.post(reverse("mfa_authenticate"), {"code": unused[0]})
    assert response["Location"] == reverse("accounts:dashboard")
    assert client.get(reverse("accounts:dashboard")).status_code == 200


def test_it_deletes_the_account_after_typed_confirmation(client, alice):
    client.force_login(alice)
    response = client.post(reverse("accounts:delete"), {"confirm": "alice@example.com"})
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert User.objects.filter(pk=alice.pk).exists()
    reauthenticate(client)
    response = client.post(reverse("accounts:delete"), {"confirm": "someone@else.com"})
    assert response.status_code == 422
    assert User.objects.filter(pk=alice.pk).exists()
    response = client.post(reverse("accounts:delete"), {"confirm": "alice@example.com"})
    assert response.status_code == 302
    assert not User.objects.filter(pk=alice.pk).exists()
    assert not Subscription.objects.filter(user_id=alice.pk).exists()


def test_the_dev_mailbox_exists_only_in_debug(client, settings, db, tmp_path):
    from django.core.mail import send_mail

    settings.DEV_MAILBOX_DIR = tmp_path
    settings.EMAIL_BACKEND = "accounts.mail.DevMailboxBackend"
    send_mail("Confirm", "Open http://testserver/accounts/confirm-email/abc/", None, ["x@y.z"])
    assert len(list(tmp_path.glob("*.eml"))) == 1

    settings.DEBUG = False
    assert client.get("/dev/mailbox/").status_code == 404
    settings.DEBUG = True
    response = client.get("/dev/mailbox/")
    assert response.status_code == 200
    assert b"Confirm" in response.content
    assert b'href="http://testserver/accounts/confirm-email/abc/"' in response.content


@pytest.mark.django_db
def test_the_dashboard_checklist_ticks_itself_and_then_goes(alice_client, alice, api, mint):
    from conftest import sample_b64

    page = alice_client.get(reverse("accounts:dashboard")).content.decode()
    assert "Get started" in page and "Next: <a" in page and "Create an API key" in page
    assert page.count("(done)") == 0
    assert "No jobs yet" in page

    _, secret = mint(alice, name="laptop")
    page = alice_client.get(reverse("accounts:dashboard")).content.decode()
    assert page.count("(done)") == 1  # the key exists; no call yet
    assert "Next: <a" in page and "Call GET /api/user/profile" in page

    assert api("get", "/api/user/profile", key=secret).status_code == 200
    body = {"image": sample_b64(), "template": "Sepia", "templateType": "filters"}
    headers = {"Prefer": "respond-async"}
    assert api("post", "/api/generate", key=secret, json=body, headers=headers).status_code == 202
    page = alice_client.get(reverse("accounts:dashboard")).content.decode()
    assert "Get started" not in page and "Next:" not in page  # all three done: it is gone
    assert "Recent jobs" in page and "Sepia" in page and "Queued" in page
    assert "You are on Free with 49 credits left" in page


@pytest.mark.django_db
def test_account_pages_use_the_products_field_markup(client, alice):
    import re

    def check(url: str) -> None:
        html = client.get(url).content.decode()
        labels = re.findall(r"<label[^>]*>([^<]*)</label>", html)
        assert labels, url
        assert not [label for label in labels if label.strip().endswith(":")], (url, labels)
        assert '<div class="field' in html, url

    for url in ("account_login", "account_signup", "account_reset_password"):
        check(reverse(url))
    response = client.post(
        reverse("account_login"), {"login": "alice@example.com", "password": "x"}
    )
    html = response.content.decode()
    assert 'class="flash flash-error" role="alert"' in html  # the form's error, above its fields
    client.force_login(alice)
    for url in ("account_email", "account_change_password"):
        check(reverse(url))
