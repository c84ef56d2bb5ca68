import json
import os

import requests

API_KEY = os.environ["NANO_API_KEY"]  # never hard-code a key: read it from the environment

response = requests.get(
    "https://studio.example.com/api/user/profile",
    headers={"Authorization": f"Bearer {API_KEY}"},
    timeout=30,
)
body = response.json()
if not body["success"]:
    error = body["error"]
    raise SystemExit(f"{response.status_code} {error['code']}: {error['message']}")
print(json.dumps(body, indent=2))
