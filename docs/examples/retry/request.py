import os
import random
import time

import requests

BASE_URL = "https://studio.example.com"
RETRYABLE = {429, 503}  # rate limited, or a service briefly down: nothing was charged


def call(method: str, path: str, attempts: int = 5, **kwargs) -> dict:
    """One API call, retried on 429/503 after Retry-After, with exponential backoff."""
    for attempt in range(attempts):
        response = requests.request(
            method,
            BASE_URL + path,
            timeout=60,
            headers={"Authorization": f"Bearer {os.environ['NANO_API_KEY']}"},
            **kwargs,
        )
        body = response.json()
        if body["success"]:
            return body
        error = body["error"]
        if response.status_code not in RETRYABLE or attempt == attempts - 1:
            # 401: check the key. 402: out of credits until error.details.resets_at.
            # 403: the key lacks error.details.required_scope. Retrying will not help.
            raise SystemExit(f"{response.status_code} {error['code']}: {error['message']}")
        wait = max(float(response.headers.get("Retry-After", 1)), 2**attempt)
        wait += random.uniform(0, wait / 2)  # jitter, so many clients don't retry in step
        print(f"{response.status_code} {error['code']}, retrying in {wait:.1f} s")
        time.sleep(wait)
    raise AssertionError("unreachable")


for _ in range(3):
    profile = call("GET", "/api/user/profile")
    print("credits left:", profile["data"]["credits"]["remaining"])
