#!/usr/bin/env bash
# CPU and allocation profiles of the gateway under the sweep's load.
#
#   ./bench/profile.sh [out-prefix]
#
# Runs after ./bench/run.sh (it reuses bench/.bin and the sweep's Caddyfile
# and request bodies): starts the mock and caddy with its admin endpoint on
# 127.0.0.1:$((BENCH_PORT+9)), a fresh store, a virtual key on a budget, then
# load at concurrency BENCH_PROFILE_CONCURRENCY (64) for 14 s, non-stream or, with
# BENCH_PROFILE_MODE=stream, the sweep's stream request, and an
# 8 s CPU profile from /debug/pprof/profile in its middle, then the heap's
# allocation profile. Writes <out-prefix>.pprof, .allocs and .load.json
# (default prefix bench/results/profile). Read them with
#   go tool pprof -top -cum bench/.bin/caddy bench/results/profile.pprof
# To compare two trees, run ./bench/run.sh and this script in each checkout.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
OUT=${1:-$ROOT/bench/results/profile}
PORT=${BENCH_PORT:-18400}
CONC=${BENCH_PROFILE_CONCURRENCY:-64}
MODE=${BENCH_PROFILE_MODE:-nonstream}
case $MODE in
nonstream) LOAD=(-body-file "$ROOT/bench/.run/sweep/chat.json") ;;
stream) LOAD=(-body-file "$ROOT/bench/.run/sweep/chat-stream.json" -stream) ;;
*)
	echo "BENCH_PROFILE_MODE is nonstream or stream" >&2
	exit 2
	;;
esac
BIN=$ROOT/bench/.bin
SWEEP=$ROOT/bench/.run/sweep
if [[ ! -x $BIN/caddy || ! -f $SWEEP/Caddyfile ]]; then
	echo "run ./bench/run.sh first: it builds bench/.bin and writes the sweep's Caddyfile" >&2
	exit 2
fi
RUN=$ROOT/bench/.run/profile
rm -rf "$RUN"
mkdir -p "$RUN" "$(dirname "$OUT")"
BENCH_MASTER_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export BENCH_MASTER_KEY
ADMIN=127.0.0.1:$((PORT + 9))
GW=http://127.0.0.1:$((PORT + 2))

sed -e "s/^\tadmin .*/\tadmin $ADMIN/" -e "s#storage_path .*/store\$#storage_path $RUN/store#" \
	-e "s#storage_path .*/store-fsync\$#storage_path $RUN/store-fsync#" \
	"$SWEEP/Caddyfile" >"$RUN/Caddyfile"

pids=()
cleanup() { ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

"$BIN/mockupstream" -addr "127.0.0.1:$PORT" -content-bytes "${BENCH_CONTENT_BYTES:-1000}" \
	-chunks "${BENCH_CHUNKS:-20}" -chunk-delay "${BENCH_CHUNK_DELAY:-1ms}" >"$RUN/mock.log" 2>&1 &
pids+=($!)
"$BIN/benchctl" wait -url "http://127.0.0.1:$PORT/health" -timeout 10s >/dev/null
XDG_CONFIG_HOME=$RUN/xdg/config XDG_DATA_HOME=$RUN/xdg/data \
	"$BIN/caddy" run --config "$RUN/Caddyfile" --adapter caddyfile >"$RUN/caddy.log" 2>&1 &
pids+=($!)
"$BIN/benchctl" wait -url "$GW/health/readiness" -timeout 60s >/dev/null
VKEY=$("$BIN/benchctl" setup -url "$GW" -master "$BENCH_MASTER_KEY" 2>/dev/null)

"$BIN/loadgen" -url "$GW/v1/chat/completions" "${LOAD[@]}" -c "$CONC" \
	-d 14s -warmup 1s -json -H "Authorization: Bearer $VKEY" >"$OUT.load.json" &
load=$!
sleep 3 # into the measured part of the load; the profile's own 8 s are timed by caddy
curl -fsS -o "$OUT.pprof" "http://$ADMIN/debug/pprof/profile?seconds=8"
curl -fsS -o "$OUT.allocs" "http://$ADMIN/debug/pprof/allocs"
wait "$load"
echo "load: $(sed -n 's/^  "rps": \([0-9.]*\).*/\1/p' "$OUT.load.json") req/s at c=$CONC, $MODE"
echo "wrote $OUT.pprof $OUT.allocs $OUT.load.json"
