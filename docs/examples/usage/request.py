import json
import os
from datetime import date, timedelta

import requests

today = date.today()
response = requests.get(
    "https://studio.example.com/api/usage",
    params={"from": str(today - timedelta(days=6)), "to": str(today), "group_by": "endpoint"},
    headers={"Authorization": f"Bearer {os.environ['NANO_API_KEY']}"},
    timeout=30,
)
body = response.json()
if not body["success"]:
    raise SystemExit(f"{response.status_code} {body['error']['code']}: {body['error']['message']}")
print(json.dumps(body, indent=2))
