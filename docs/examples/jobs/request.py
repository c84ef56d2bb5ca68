import base64
import json
import os

import requests

BASE_URL = "https://studio.example.com"
session = requests.Session()
session.headers["Authorization"] = f"Bearer {os.environ['NANO_API_KEY']}"


def call(method: str, path: str, **kwargs) -> requests.Response:
    response = session.request(method, BASE_URL + path, timeout=30, **kwargs)
    error = response.json().get("error")
    # 409 JOB_NOT_CANCELLABLE is an answer, not a failure: a worker took the job first.
    if error and error["code"] != "JOB_NOT_CANCELLABLE":
        raise SystemExit(f"{response.status_code} {error['code']}: {error['message']}")
    return response


with open("photo.png", "rb") as f:
    image = base64.b64encode(f.read()).decode()

# Async mode: 202 at once with the queued job and its Location; nothing waits.
submitted = call(
    "POST",
    "/api/generate",
    json={"image": image, "template": "Grayscale", "templateType": "filters"},
    headers={"Prefer": "respond-async"},
)
job = submitted.json()["data"]
print(submitted.status_code, submitted.headers["Location"], job["status"])

# Changed your mind? A job that has not started yet can be cancelled, and is refunded.
cancelled = call("POST", f"/api/jobs/{job['id']}/cancel").json()
print(cancelled["data"]["status"] if cancelled["success"] else cancelled["error"]["code"])

# Your jobs, newest first; pass next_cursor back as cursor for the next page.
params = {"limit": 20}
while True:
    page = call("GET", "/api/jobs", params=params).json()
    print(json.dumps(page, indent=2))
    if not page["data"]["next_cursor"]:
        break
    params["cursor"] = page["data"]["next_cursor"]
