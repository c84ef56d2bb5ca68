from __future__ import annotations

import re
import zlib

import pytest

from apikeys.models import (
    BASE62,
    ApiKey,
    AuthFailure,
    checksum,
    digest,
    generate_secret,
    is_well_formed,
)

KEY_RE = re.compile(r"^(nh_|sk-)[0-9A-Za-z]{38}$")


def _decode62(text: str) -> int:
    value = 0
    for char in text:
        value = value * 62 + BASE62.index(char)
    return value


def test_ten_thousand_minted_secrets_are_unique_well_formed_and_checksummed():
    secrets = [generate_secret("nh_" if i % 2 else "sk-") for i in range(10_000)]
    assert len(set(secrets)) == 10_000
    for secret in secrets:
        assert KEY_RE.match(secret)
        assert len(secret) == 41
        body, check = secret[3:35], secret[35:]
        assert _decode62(check) == zlib.crc32(body.encode())
        assert is_well_formed(secret)


def test_a_one_character_change_fails_the_checksum():
    secret = generate_secret()
    for position in range(3, 41):
        replacement = "A" if secret[position] != "A" else "B"
        assert not is_well_formed(secret[:position] + replacement + secret[position + 1 :])


@pytest.mark.django_db
def test_a_malformed_key_is_refused_with_zero_queries(django_assert_num_queries):
    secret = generate_secret()
    tampered = secret[:10] + ("x" if secret[10] != "x" else "y") + secret[11:]
    for raw in (tampered, "", "nh_short", "pk_" + secret[3:], secret + "x"):
        with django_assert_num_queries(0), pytest.raises(AuthFailure) as failure:
            ApiKey.objects.authenticate(raw)
        assert failure.value.code == "INVALID_API_KEY"


def test_authentication_is_one_query(alice_key, django_assert_num_queries):
    key, secret = alice_key
    with django_assert_num_queries(1):
        found = ApiKey.objects.authenticate(secret)
        assert found.user.subscription.plan.slug == "free"
    assert found.pk == key.pk


def test_the_database_never_holds_the_plaintext(alice_key):
    from django.db import connection

    key, secret = alice_key
    columns = [field.column for field in ApiKey._meta.concrete_fields]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)} FROM {ApiKey._meta.db_table}")
        rows = cursor.fetchall()
    assert len(rows) == 1
    for value in rows[0]:
        assert secret not in str(value)
        assert secret[3:35] not in str(value)
    assert key.digest == digest(secret) != secret
    assert key.hint == f"{secret[:7]}…{secret[-4:]}"


def test_checksum_is_six_base62_characters():
    assert checksum("a" * 32) == checksum("a" * 32)
    assert len(checksum("a" * 32)) == 6
