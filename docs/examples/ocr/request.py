import base64
import json
import os
import sys

import requests

with open(sys.argv[1] if len(sys.argv) > 1 else "receipt.png", "rb") as f:
    image = base64.b64encode(f.read()).decode()

response = requests.post(
    "https://studio.example.com/api/ocr",
    json={"image": image, "language": "auto", "outputFormat": "json"},
    headers={"Authorization": f"Bearer {os.environ['NANO_API_KEY']}"},
    timeout=60,
)
body = response.json()
if not body["success"]:
    raise SystemExit(f"{response.status_code} {body['error']['code']}: {body['error']['message']}")
print(json.dumps(body, indent=2))
