"""No log line, error body or admin page may contain a full key."""

from __future__ import annotations

import logging

from django.db import connection

from apikeys.models import generate_secret


def test_the_whole_api_with_a_key_never_logs_it(api, alice_key, caplog, capsys):
    key, secret = alice_key
    connection.force_debug_cursor = True  # log every SQL statement with its parameters too
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    seen = [secret]
    try:
        calls = [
            ("get", "/api/user/profile", None),
            ("get", "/api/keys", None),
            ("post", "/api/keys", {"name": "logged?", "preset": "read"}),
            ("get", f"/api/keys/{key.pk}", None),
            ("get", "/api/nope", None),
            ("put", "/api/user/profile", None),
            ("post", "/api/keys", {"name": ""}),
            ("get", f"/api/user/profile?api_key={secret}", None),
        ]
        bodies = []
        for method, path, body in calls:
            response = api(method, path, key=secret, json=body)
            if response.status_code >= 400:  # error bodies must not echo a key either
                bodies.append(response.content.decode())
            if response.status_code == 201:
                seen.append(response.json()["data"]["secret"])
        new_id = api("get", "/api/keys", key=secret).json()["data"]["keys"][0]["id"]
        rolled = api("post", f"/api/keys/{new_id}/roll", key=secret, json={"grace": "now"})
        seen.append(rolled.json()["data"]["secret"])
        api("delete", f"/api/keys/{new_id}", key=secret)
        wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
        bodies.append(api("get", "/api/user/profile", key=wrong).content.decode())
        bodies.append(api("get", "/api/user/profile", key=generate_secret()).content.decode())
    finally:
        connection.force_debug_cursor = False

    captured = capsys.readouterr()
    text = "\n".join([caplog.text, captured.out, captured.err, *bodies])
    assert len(caplog.records) > 20  # the capture really saw the traffic (SQL, warnings)
    for value in seen:
        assert value not in text
        assert value[3:35] not in text  # nor its random part
    assert wrong not in text
