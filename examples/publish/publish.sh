#!/bin/sh
# Publishes one event to users 7 and 8, wherever in the cluster they are connected.
# SSE_URL: the plugin's base URL (e.g. https://app.example.com/sse/hr); SSE_API_KEY: the secret.
set -eu
curl --fail-with-body --silent --show-error \
  -X POST "$SSE_URL/publish" \
  -H "Authorization: Bearer $SSE_API_KEY" \
  -H 'Content-Type: application/json' \
  --data '{"target":"user","keys":["7","8"],"event":"invoice-paid","data":{"invoice":1042}}'
echo
