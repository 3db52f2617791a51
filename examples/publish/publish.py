#!/usr/bin/env python3
"""Publishes a durable event to users 7 and 8 with the standard library only.

A retry (after a lost answer, a 429 or a 5xx) sends the same idempotencyKey, so that the
message is stored and delivered once. SSE_URL: the plugin's base URL;
SSE_API_KEY: the secret.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request

url = os.environ["SSE_URL"] + "/publish"
message = {
    "target": "user",
    "keys": ["7", "8"],
    "event": "invoice-paid",
    "data": {"invoice": 1042},
    "durable": True,
    "ttlMs": 24 * 3600 * 1000,
    "idempotencyKey": os.environ.get("IDEMPOTENCY_KEY", "invoice-1042-paid"),
}
body = json.dumps(message).encode("utf-8")
headers = {"Authorization": "Bearer " + os.environ["SSE_API_KEY"], "Content-Type": "application/json"}

for attempt in range(5):
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            print(response.read().decode("utf-8"))
            sys.exit(0)
    except urllib.error.HTTPError as err:
        answer = err.read().decode("utf-8")
        if err.code != 429 and err.code < 500:
            print(err.code, answer, file=sys.stderr)  # 400, 401, 403, 413: retrying will not help
            sys.exit(1)
        wait = int(err.headers.get("Retry-After") or 2**attempt)
    except urllib.error.URLError:
        wait = 2**attempt
    time.sleep(min(wait, 30))
print("gave up", file=sys.stderr)
sys.exit(1)
