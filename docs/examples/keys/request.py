import json
import os
from datetime import datetime

import requests

BASE_URL = "https://studio.example.com"
session = requests.Session()
# A key with the keys:write scope manages keys; its secret comes from the environment.
session.headers["Authorization"] = f"Bearer {os.environ['NANO_API_KEY']}"


def call(method: str, path: str, **kwargs) -> dict:
    response = session.request(method, BASE_URL + path, timeout=30, **kwargs)
    body = response.json()
    if not body["success"]:
        raise SystemExit(
            f"{response.status_code} {body['error']['code']}: {body['error']['message']}"
        )
    return body


# A key for a deploy job: generate only, expiring in 90 days. The secret is in this response
# only: put it in your secret store now.
created = call(
    "POST",
    "/api/keys",
    json={
        "name": f"deploy bot {datetime.now():%Y%m%d-%H%M%S}",
        "preset": "generate",
        "expires_in_days": 90,
        "budget": {"cap": 200, "period": "day"},  # at most 200 credits a day
    },
)
key_id = created["data"]["key"]["id"]
# Rotation: a new secret now, the old one keeps working for an hour while you swap it.
call("POST", f"/api/keys/{key_id}/roll", json={"grace": "1h"})
# Done with it: revoked keys stop working on the very next request.
call("DELETE", f"/api/keys/{key_id}")
print(json.dumps(created, indent=2))
