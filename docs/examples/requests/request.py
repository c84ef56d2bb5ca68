import json
import os

import requests

# Your last five refused requests (4xx), newest first; pass next_cursor back for more.
response = requests.get(
    "https://studio.example.com/api/requests",
    params={"status": "4xx", "limit": 5},
    headers={"Authorization": f"Bearer {os.environ['NANO_API_KEY']}"},
    timeout=30,
)
body = response.json()
if not body["success"]:
    raise SystemExit(f"{response.status_code} {body['error']['code']}: {body['error']['message']}")
print(json.dumps(body, indent=2))
for request in body["data"]["requests"]:
    print(request["created_at"], request["status"], request["error_code"], request["inspect_url"])
