#!/usr/bin/env bash
# Builds ./caddy with the llm_gateway module, using xcaddy.
#
#   ./xcaddy.sh                # builds ./caddy
#   CADDY_VERSION=v2.11.9 ./xcaddy.sh
#
# This module is not published, so xcaddy's `go get` must not ask the module
# proxy for it: some proxies answer 403 (not 404), which Go treats as final.
# "<proxy>|off" lets Go fall through to the local replacement on any error.
set -euo pipefail
cd "$(dirname "$0")"

CADDY_VERSION="${CADDY_VERSION:-v2.11.9}"
XCADDY_VERSION="${XCADDY_VERSION:-v0.4.5}"
MODULE="github.com/llmgateway/caddy-llm-gateway"

if ! command -v go >/dev/null 2>&1; then
	echo "xcaddy.sh: Go is required (https://go.dev/dl/), version 1.26 or newer" >&2
	exit 1
fi

XCADDY="$(command -v xcaddy || true)"
if [ -z "$XCADDY" ]; then
	GOBIN_DIR="$(go env GOPATH)/bin"
	XCADDY="$GOBIN_DIR/xcaddy"
	if [ ! -x "$XCADDY" ]; then
		echo "installing xcaddy $XCADDY_VERSION" >&2
		go install "github.com/caddyserver/xcaddy/cmd/xcaddy@$XCADDY_VERSION"
	fi
fi

proxy="$(go env GOPROXY)"
proxy="${proxy%,direct}"
proxy="${proxy%|direct}"
case "$proxy" in
off | direct | "") proxy="https://proxy.golang.org" ;;
esac

GOPROXY="$proxy|off" "$XCADDY" build "$CADDY_VERSION" \
	--with "$MODULE=." \
	--output ./caddy
./caddy list-modules | grep -q '^http.handlers.llm_gateway$'
echo "built ./caddy with http.handlers.llm_gateway" >&2
