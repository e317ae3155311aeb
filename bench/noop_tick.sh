#!/bin/bash
# The shell baseline of a no-op tick: the HTTP calls of the original design's
# ansible-proxy.sh, made with curl and jq. Keepalive GET, then for every binary of the
# manifest GET /bins/{bin}, extract .data.sha256 with jq and compare it with the
# manifest's version (read with jq). Exits 0 when every binary is current.
set -euo pipefail
: "${BIN_MANAGER_API:?BIN_MANAGER_API is required}"
: "${BIN_MANIFESTS:?BIN_MANIFESTS is required}"
node="${NODE_NAME:-$(hostname)}"
arch="$(uname -m)"
# The node's own credential, as the agent sends it (docs/security.md).
auth=()
if [ -n "${NODE_TOKEN_FILE:-}" ] && [ -r "$NODE_TOKEN_FILE" ]; then
    auth=(-H "Authorization: Bearer $(cat "$NODE_TOKEN_FILE")")
fi

status=$(curl -sf "${auth[@]}" "$BIN_MANAGER_API/keepalive?nodeName=$node" | jq -r '.data.status')
if [ "$status" != "active" ]; then
    echo "keepalive: node $node is not active" >&2
    exit 1
fi

for bin in $(jq -r '.binaries[].binaryName' "$BIN_MANIFESTS"); do
    latest=$(curl -sf "${auth[@]}" "$BIN_MANAGER_API/bins/$bin?nodeName=$node&arch=$arch" | jq -r '.data.sha256')
    current=$(jq -r --arg b "$bin" '.binaries[] | select(.binaryName == $b) | .version' "$BIN_MANIFESTS")
    if [ "$latest" != "$current" ]; then
        echo "$bin: $current is not the latest $latest" >&2
        exit 1
    fi
done
