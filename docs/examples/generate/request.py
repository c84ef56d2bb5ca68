import base64
import json
import os
import sys
import time
import uuid

import requests

BASE_URL = "https://studio.example.com"
session = requests.Session()
session.headers["Authorization"] = f"Bearer {os.environ['NANO_API_KEY']}"

with open(sys.argv[1] if len(sys.argv) > 1 else "photo.png", "rb") as f:
    image = base64.b64encode(f.read()).decode()

# The Idempotency-Key makes this safe to retry: a repeat returns the same job, charged once.
response = session.post(
    f"{BASE_URL}/api/generate",
    json={"image": image, "template": "Vintage", "templateType": "styles"},
    headers={"Idempotency-Key": str(uuid.uuid4())},
    timeout=60,
)
body = response.json()
if not body["success"]:
    raise SystemExit(f"{response.status_code} {body['error']['code']}: {body['error']['message']}")
# 200: finished. 202: still running after the server's wait; poll until it is final.
while body["data"]["status"] in ("queued", "running"):
    time.sleep(1)
    body = session.get(f"{BASE_URL}/api/jobs/{body['data']['id']}", timeout=30).json()
if body["data"]["status"] == "succeeded":
    output = session.get(body["data"]["output_url"], timeout=60)  # an absolute URL
    with open("result.png", "wb") as f:
        f.write(output.content)
print(json.dumps(body, indent=2))
