import json
import os

import requests

response = requests.get(
    "https://studio.example.com/api/models",
    headers={"Authorization": f"Bearer {os.environ['NANO_API_KEY']}"},
    timeout=30,
)
body = response.json()
if not body["success"]:
    raise SystemExit(f"{response.status_code} {body['error']['code']}: {body['error']['message']}")
print(json.dumps(body, indent=2))
