#!/usr/bin/env bash
# Benchmarks: the gateway's overhead, measured in one run
# against (a) the mock upstream directly, (b) the same caddy binary with a
# plain reverse_proxy to the mock and (c) llm_gateway with a virtual key, a
# budget, a price, metering and usage records (durability os, the default);
# (d) is (c) with durability fsync, non-stream only.
#
#   ./bench/run.sh          the sweep: concurrency 1 16 64 256, non-stream
#                           and stream, against (a), (b) and (c)
#   ./bench/run.sh scale    100,000 keys and 1,000,000 usage records, then
#                           start-up time, RSS under load, /v1/usage latency
#   ./bench/run.sh fleet    PostgreSQL mode: (b) and (c) beside (d) llm_gateway
#                           with database_url, one instance, and (d3) three
#                           instances on one database; non-stream c=1 and
#                           c=64, stream c=64; database round trips per request
#   ./bench/run.sh route    a route whose first target is healthy against the
#                           same request naming provider:model, on one gateway:
#                           rows alternate, BENCH_ROUNDS times, non-stream and
#                           stream at concurrency 1 and 64
#
# Settings (environment):
#   BENCH_DURATION=10s        measured time per row
#   BENCH_WARMUP=1s           unmeasured warm-up per row
#   BENCH_CONCURRENCY="1 16 64 256"
#   BENCH_MODES="nonstream stream"
#   BENCH_CONTENT_BYTES=1000  assistant content per response
#   BENCH_CHUNKS=20           content chunks per stream
#   BENCH_CHUNK_DELAY=1ms     mock delay before each content chunk
#   BENCH_PORT=18400          mock; +1 reverse_proxy, +2 gateway, +6 gateway
#                             with durability fsync, +9 caddy's admin endpoint
#                             (its /metrics gives allocations per request)
#   BENCH_SCALE_KEYS=100000  BENCH_SCALE_RECORDS=1000000  BENCH_SCALE_USERS=1000
#   BENCH_SCALE_CONCURRENCY=64  BENCH_USAGE_REQUESTS=200
#   BENCH_ROUNDS=3            (route) alternating rounds
#   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable
#                             (fleet) a server on which each run creates a
#                             fresh database, dropped after; needs psql
#   BENCH_FLEET_USERS=64      (fleet) accounts of the many-account rows: the
#                             c=64 rows run again with the load spread over
#                             that many users, each with its own key and
#                             budget (1: only the one-account rows)
#
# Needs Go and bash, coreutils and /proc; nothing else. Everything it makes
# lives in bench/.bin (binaries), bench/.run (store, logs, raw results) and
# bench/results (the reports).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
MODE=${1:-sweep}
case $MODE in
sweep | scale | fleet | route) ;;
*)
	echo "usage: $0 [scale|fleet|route]" >&2
	exit 2
	;;
esac

DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-1s}
CONCURRENCY=${BENCH_CONCURRENCY:-1 16 64 256}
MODES=${BENCH_MODES:-nonstream stream}
CONTENT_BYTES=${BENCH_CONTENT_BYTES:-1000}
CHUNKS=${BENCH_CHUNKS:-20}
CHUNK_DELAY=${BENCH_CHUNK_DELAY:-1ms}
PORT=${BENCH_PORT:-18400}
SCALE_KEYS=${BENCH_SCALE_KEYS:-100000}
SCALE_RECORDS=${BENCH_SCALE_RECORDS:-1000000}
SCALE_USERS=${BENCH_SCALE_USERS:-1000}
SCALE_CONCURRENCY=${BENCH_SCALE_CONCURRENCY:-64}
USAGE_REQUESTS=${BENCH_USAGE_REQUESTS:-200}
DATABASE_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
ROUNDS=${BENCH_ROUNDS:-3}
FLEET_USERS=${BENCH_FLEET_USERS:-64}
KEYS_FILE="" # when set, run_row and fleet_row spread requests over its keys

MOCK_PORT=$PORT
PROXY_PORT=$((PORT + 1))
GW_PORT=$((PORT + 2))
MOCK=http://127.0.0.1:$MOCK_PORT
PROXY=http://127.0.0.1:$PROXY_PORT
GW=http://127.0.0.1:$GW_PORT
FSYNC_PORT=$((PORT + 6))
GWF=http://127.0.0.1:$FSYNC_PORT
ADMIN_ADDR=127.0.0.1:$((PORT + 9))
PG_PORTS=($((PORT + 3)) $((PORT + 4)) $((PORT + 5)))

BIN=$ROOT/bench/.bin
RUN=$ROOT/bench/.run/$MODE
ROWS=$RUN/rows
RESULTS=$ROOT/bench/results

# The exact command, with the settings that differ from the defaults.
COMMAND=""
for v in BENCH_DURATION BENCH_WARMUP BENCH_CONCURRENCY BENCH_MODES BENCH_CONTENT_BYTES BENCH_CHUNKS \
	BENCH_CHUNK_DELAY BENCH_PORT BENCH_SCALE_KEYS BENCH_SCALE_RECORDS BENCH_SCALE_USERS \
	BENCH_SCALE_CONCURRENCY BENCH_USAGE_REQUESTS BENCH_DATABASE_URL BENCH_ROUNDS; do
	if [[ -n ${!v:-} ]]; then
		COMMAND+="$v=$(printf '%q' "${!v}") "
	fi
done
COMMAND+="./bench/run.sh"
[[ $MODE != sweep ]] && COMMAND+=" $MODE"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- processes -------------------------------------------------------------

MOCK_PID=""
CADDY_PID=""
SAMPLER_PID=""
PG_PIDS=()
BENCH_DB=""
PG_URL=""
STARTUP_MS=""
READY_RSS=0
COMMIT=unknown
READY_ANON=0

stop_pid() { # pid: TERM, wait up to 10 s, then KILL
	local pid=$1 i
	[[ -n $pid ]] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || {
			wait "$pid" 2>/dev/null || true
			return 0
		}
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_pid "$SAMPLER_PID"
	stop_pid "$CADDY_PID"
	local p
	for p in "${PG_PIDS[@]}"; do stop_pid "$p"; done
	stop_pid "$MOCK_PID"
	if [[ -n $BENCH_DB ]]; then
		psql "$DATABASE_URL" -Atqc "DROP DATABASE IF EXISTS $BENCH_DB" >/dev/null 2>&1 || true
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- peak RSS ----------------------------------------------------------------
# Before a row, "5" in /proc/PID/clear_refs resets VmHWM (the peak RSS) to
# the current RSS; after it VmHWM is the row's peak. Where that reset is not
# permitted, the largest VmRSS sampled every 50 ms is used instead. The
# sampler also keeps the largest RssAnon (heap, as opposed to mapped files
# such as Badger's tables and the binary itself).

status_kb() { # pid field -> kB
	local k v _
	while read -r k v _; do
		if [[ $k == "$2:" ]]; then
			echo "$v"
			return
		fi
	done <"/proc/$1/status"
	echo 0
}

rss_sampler() { # pid file: keeps "<max VmRSS kB> <max RssAnon kB>" in file
	local max=0 anon=0 k v _ rss a
	while kill -0 "$1" 2>/dev/null; do
		rss=0 a=0
		while read -r k v _; do
			case $k in
			VmRSS:) rss=$v ;;
			RssAnon:) a=$v ;;
			esac
		done <"/proc/$1/status" 2>/dev/null || true
		if ((rss > max || a > anon)); then
			((rss > max)) && max=$rss
			((a > anon)) && anon=$a
			echo "$max $anon" >"$2"
		fi
		sleep 0.05
	done
}

rss_start() { # file
	HWM_RESET=0
	if echo 5 2>/dev/null >"/proc/$CADDY_PID/clear_refs"; then
		HWM_RESET=1
	fi
	: >"$1.sampled"
	rss_sampler "$CADDY_PID" "$1.sampled" &
	SAMPLER_PID=$!
}

rss_stop() { # file: writes "<peak kB> <how> <peak anonymous kB>"
	local sampled anon hwm
	stop_pid "$SAMPLER_PID"
	SAMPLER_PID=""
	read -r sampled anon <"$1.sampled" || true
	sampled=${sampled:-0} anon=${anon:-0}
	rm -f "$1.sampled"
	if ((HWM_RESET)); then
		hwm=$(status_kb "$CADDY_PID" VmHWM)
		((hwm > sampled)) || hwm=$sampled
		echo "$hwm VmHWM $anon" >"$1"
	else
		echo "$sampled sampled $anon" >"$1"
	fi
}

# --- build and start -------------------------------------------------------

build() {
	COMMIT=$(git -C "$ROOT" describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)
	log "building caddy at $COMMIT, mock upstream, load generator and helpers ($(go version | cut -d' ' -f3))"
	mkdir -p "$BIN"
	go build -o "$BIN/caddy" ./cmd/caddy
	go build -o "$BIN/mockupstream" ./bench/mockupstream
	go build -o "$BIN/loadgen" ./bench/loadgen
	go build -o "$BIN/benchctl" ./bench/benchctl
	if [[ $MODE == scale ]]; then
		go build -o "$BIN/seed" ./bench/seed
	fi
}

start_mock() {
	"$BIN/mockupstream" -addr "127.0.0.1:$MOCK_PORT" -content-bytes "$CONTENT_BYTES" \
		-chunks "$CHUNKS" -chunk-delay "$CHUNK_DELAY" >"$RUN/mock.log" 2>&1 &
	MOCK_PID=$!
	"$BIN/benchctl" wait -url "$MOCK/health" -timeout 10s >/dev/null
}

write_caddyfile() { # storage_path [fsync: add the (d) site]
	cat >"$RUN/Caddyfile" <<EOF
{
	admin $ADMIN_ADDR
	persist_config off
	auto_https off
	grace_period 2s
	log {
		level WARN
	}
}

# (b) plain reverse proxy, with as many idle upstream connections per host
# as the gateway's own transport keeps (Caddy's default is 32).
http://127.0.0.1:$PROXY_PORT {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:$MOCK_PORT {
		transport http {
			keepalive_idle_conns_per_host 256
		}
	}
}

# (c) the gateway, everything on: virtual key auth, budget, price, metering,
# durable usage records.
http://127.0.0.1:$GW_PORT {
	bind 127.0.0.1
	llm_gateway {
		master_key {env.BENCH_MASTER_KEY}
		storage_path $1
		provider mock {
			base_url $MOCK/v1
		}
		price mock:bench 0.15 0.60
		price mock:bench-fallback 0.15 0.60
		# (route mode) the same model through a route whose first target
		# is healthy, with a fallback that is never needed.
		route bench-route {
			to mock:bench
			fallback mock:bench-fallback
		}
	}
}
EOF
	[[ ${2:-} == fsync ]] || return 0
	cat >>"$RUN/Caddyfile" <<EOF

# (d) the same with durability fsync: each record on disk before its
# response, one fsync per batch of concurrent requests.
http://127.0.0.1:$FSYNC_PORT {
	bind 127.0.0.1
	llm_gateway {
		master_key {env.BENCH_MASTER_KEY}
		storage_path $1-fsync
		durability fsync
		provider mock {
			base_url $MOCK/v1
		}
		price mock:bench 0.15 0.60
	}
}
EOF
}

start_caddy() { # sets CADDY_PID and STARTUP_MS (launch to the first 200 of /health/readiness)
	local t0
	t0=$(date +%s%N)
	XDG_CONFIG_HOME=$RUN/xdg/config XDG_DATA_HOME=$RUN/xdg/data \
		"$BIN/caddy" run --config "$RUN/Caddyfile" --adapter caddyfile >"$RUN/caddy.log" 2>&1 &
	CADDY_PID=$!
	if ! STARTUP_MS=$("$BIN/benchctl" wait -url "$GW/health/readiness" -since "$t0" -timeout 60s); then
		log "caddy did not become ready; its log:"
		cat "$RUN/caddy.log" >&2
		return 1
	fi
}

write_bodies() {
	cat >"$RUN/chat.json" <<'EOF'
{"model":"mock:bench","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write a haiku about Jupiter and explain each line."}],"max_tokens":300,"temperature":0.7}
EOF
	cat >"$RUN/chat-stream.json" <<'EOF'
{"model":"mock:bench","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write a haiku about Jupiter and explain each line."}],"max_tokens":300,"temperature":0.7,"stream":true,"stream_options":{"include_usage":true}}
EOF
}

# run_row name url body-file stream(0|1) concurrency rss(0|1)
run_row() {
	local name=$1 url=$2 body=$3 stream=$4 c=$5 rss=$6
	local args=(-url "$url" -body-file "$body" -c "$c" -d "$DURATION" -warmup "$WARMUP" -json
		-H "Authorization: Bearer ${KEY_OVERRIDE:-$VKEY}")
	((stream)) && args+=(-stream)
	[[ -n $KEYS_FILE ]] && args+=(-keys-file "$KEYS_FILE")
	((rss)) && args+=(-pid "$CADDY_PID" -metrics "http://$ADMIN_ADDR/metrics")
	((rss)) && rss_start "$ROWS/$name.rss"
	if ! "$BIN/loadgen" "${args[@]}" >"$ROWS/$name.json" 2>"$ROWS/$name.err"; then
		log "loadgen reported no successful request for $name: $(head -c 500 "$ROWS/$name.json" "$ROWS/$name.err" 2>/dev/null)"
	fi
	((rss)) && rss_stop "$ROWS/$name.rss"
	[[ -s $ROWS/$name.err ]] || rm -f "$ROWS/$name.err"
	local rps p50 errs
	rps=$(sed -n 's/^  "rps": \([0-9.]*\).*/\1/p' "$ROWS/$name.json")
	errs=$(sed -n 's/^  "errors": \([0-9]*\).*/\1/p' "$ROWS/$name.json")
	p50=$(sed -n 's/^    "p50_ms": \([0-9.]*\).*/\1/p' "$ROWS/$name.json" | head -1)
	log "$(printf '%-22s %10.0f req/s  p50 %8.3f ms  errors %s' "$name" "${rps:-0}" "${p50:-0}" "${errs:-?}")"
}

# --- modes -------------------------------------------------------------------

sweep() {
	write_bodies
	write_caddyfile "$RUN/store" fsync
	start_mock
	log "starting caddy: (b) $PROXY reverse_proxy, (c) $GW llm_gateway, (d) $GWF llm_gateway with durability fsync"
	start_caddy
	READY_RSS=$(status_kb "$CADDY_PID" VmRSS)
	READY_ANON=$(status_kb "$CADDY_PID" RssAnon)
	log "caddy ready in $STARTUP_MS ms (pid $CADDY_PID, RSS $((READY_RSS / 1024)) MB)"
	VKEY=$("$BIN/benchctl" setup -url "$GW" -master "$BENCH_MASTER_KEY")
	FKEY=$("$BIN/benchctl" setup -url "$GWF" -master "$BENCH_MASTER_KEY")
	"$BIN/benchctl" check -url "$GW/v1/chat/completions" -key "$VKEY" -body-file "$RUN/chat.json"
	"$BIN/benchctl" check -url "$GW/v1/chat/completions" -key "$VKEY" -body-file "$RUN/chat-stream.json" -stream
	"$BIN/benchctl" check -url "$GWF/v1/chat/completions" -key "$FKEY" -body-file "$RUN/chat.json"
	log "smoke test: both gateways answer 200 with their virtual keys"
	# This machine's fsync, on the store's file system, in the same run.
	"$BIN/benchctl" fsync -dir "$RUN" -n 2000 >"$ROWS/fsync.json"
	log "fsync (fdatasync of a 512-byte write): $(tr -d '\n ' <"$ROWS/fsync.json")"

	local n_rows=0 per m0
	for m0 in $MODES; do for _ in $CONCURRENCY; do
		n_rows=$((n_rows + 3))
		[[ $m0 == nonstream ]] && n_rows=$((n_rows + 1))
	done; done
	log "running $n_rows rows of $DURATION (+ $WARMUP warm-up) each"
	local m c stream body
	for m in $MODES; do
		case $m in
		nonstream) stream=0 body=$RUN/chat.json ;;
		stream) stream=1 body=$RUN/chat-stream.json ;;
		*)
			log "unknown mode $m"
			return 2
			;;
		esac
		for c in $CONCURRENCY; do
			run_row "$m-c$c-a" "$MOCK/v1/chat/completions" "$body" "$stream" "$c" 0
			run_row "$m-c$c-b" "$PROXY/v1/chat/completions" "$body" "$stream" "$c" 1
			run_row "$m-c$c-c" "$GW/v1/chat/completions" "$body" "$stream" "$c" 1
			if [[ $m == nonstream ]]; then
				KEY_OVERRIDE=$FKEY run_row "$m-c$c-d" "$GWF/v1/chat/completions" "$body" "$stream" "$c" 1
			fi
		done
	done
	"$BIN/benchctl" fsync -dir "$RUN" -n 2000 >"$ROWS/fsync-after.json"

	per="$DURATION per row after a $WARMUP warm-up; one worker per connection; \`POST /v1/chat/completions\` with \`$(tr -d '\n' <"$RUN/chat.json")\` (streams add \`\"stream\":true,\"stream_options\":{\"include_usage\":true}\`) and the virtual key in \`Authorization\` for all three targets; mock response $CONTENT_BYTES content bytes, streams in $CHUNKS content chunks with $CHUNK_DELAY before each."
	mkdir -p "$RESULTS"
	"$BIN/benchctl" report -dir "$ROWS" -out "$RESULTS/results.md" -command "$COMMAND" -commit "$COMMIT" \
		-go "$(go version)" -concurrency "$CONCURRENCY" -settings "$per" -ready-rss "$READY_RSS" -ready-anon "$READY_ANON" -startup "$STARTUP_MS"
	log "wrote bench/results/results.md"
}

scale() {
	write_bodies
	log "seeding $SCALE_KEYS keys and $SCALE_RECORDS usage records for $SCALE_USERS users into a fresh store"
	"$BIN/seed" -dir "$RUN/store" -users "$SCALE_USERS" -keys "$SCALE_KEYS" -records "$SCALE_RECORDS" \
		>"$RUN/seed.json" 2> >(tee "$RUN/seed.log" >&2)
	local sample
	sample=$(sed -n 's/^  "sample_user": "\(.*\)",*$/\1/p' "$RUN/seed.json")
	log "seeded: $(tr -d '\n ' <"$RUN/seed.json" | head -c 400)"

	write_caddyfile "$RUN/store"
	start_mock
	start_caddy
	echo "$STARTUP_MS" >"$RUN/startup_ms"
	log "caddy ready in $STARTUP_MS ms on the seeded store (pid $CADDY_PID)"
	status_kb "$CADDY_PID" VmRSS >"$RUN/ready_rss_kb"
	status_kb "$CADDY_PID" RssAnon >"$RUN/ready_anon_kb"

	VKEY=$("$BIN/benchctl" setup -url "$GW" -master "$BENCH_MASTER_KEY")
	"$BIN/benchctl" check -url "$GW/v1/chat/completions" -key "$VKEY" -body-file "$RUN/chat.json"

	# /v1/usage before load, with a cold cache for the first requests.
	local q="$GW/v1/usage?user_id=$sample&limit=100"
	"$BIN/benchctl" count -url "$q" -key "$BENCH_MASTER_KEY" >"$RUN/usage_count"
	"$BIN/loadgen" -url "$q" -method GET -H "Authorization: Bearer $BENCH_MASTER_KEY" \
		-c 1 -n "$USAGE_REQUESTS" -json >"$ROWS/usage-idle.json"
	log "GET /v1/usage?user_id=$sample&limit=100: $(cat "$RUN/usage_count") records per page"
	# The usage summary of the 30 days the records span, by day and model.
	local sq="$GW/v1/usage/summary?interval=day&group_by=model&start_date=$(($(date +%s) - 30 * 86400))"
	"$BIN/loadgen" -url "$sq" -method GET -H "Authorization: Bearer $BENCH_MASTER_KEY" \
		-c 1 -n "$USAGE_REQUESTS" -json >"$ROWS/summary-idle.json"

	local m stream body
	for m in $MODES; do
		case $m in
		nonstream) stream=0 body=$RUN/chat.json ;;
		stream) stream=1 body=$RUN/chat-stream.json ;;
		esac
		run_row "$m-c$SCALE_CONCURRENCY-c" "$GW/v1/chat/completions" "$body" "$stream" "$SCALE_CONCURRENCY" 1
	done

	# /v1/usage again while the gateway is under the same non-stream load.
	"$BIN/loadgen" -url "$GW/v1/chat/completions" -body-file "$RUN/chat.json" -c "$SCALE_CONCURRENCY" \
		-d "$DURATION" -json -H "Authorization: Bearer $VKEY" >"$ROWS/background.json" &
	local bg=$!
	sleep 1
	"$BIN/loadgen" -url "$q" -method GET -H "Authorization: Bearer $BENCH_MASTER_KEY" \
		-c 1 -n "$USAGE_REQUESTS" -json >"$ROWS/usage-load.json"
	wait "$bg" || true
	status_kb "$CADDY_PID" VmRSS >"$RUN/end_rss_kb"
	status_kb "$CADDY_PID" RssAnon >"$RUN/end_anon_kb"
	# A compaction may delete a table while du walks the store: du then
	# complains and fails, but its total is still the store's size.
	{ du -sk "$RUN/store" 2>/dev/null || true; } | cut -f1 >"$RUN/store_kb"

	mkdir -p "$RESULTS"
	"$BIN/benchctl" scale-report -dir "$RUN" -out "$RESULTS/scale.md" -command "$COMMAND" -commit "$COMMIT" \
		-go "$(go version)" -concurrency "$SCALE_CONCURRENCY" -user "$sample" -modes "$MODES" \
		-settings "$DURATION per load row after a $WARMUP warm-up; mock response $CONTENT_BYTES content bytes, $CHUNKS chunks, $CHUNK_DELAY per chunk."
	log "wrote bench/results/scale.md"
}

# --- route mode --------------------------------------------------------------

# route: (c) naming mock:bench against (r) naming the route bench-route,
# whose first target is mock:bench (healthy) and whose fallback is never
# asked; same gateway, same key, rows alternating so that the machine's
# drift falls on both alike.
route() {
	write_bodies
	sed 's/"model":"mock:bench"/"model":"bench-route"/' "$RUN/chat.json" >"$RUN/route.json"
	sed 's/"model":"mock:bench"/"model":"bench-route"/' "$RUN/chat-stream.json" >"$RUN/route-stream.json"
	write_caddyfile "$RUN/store"
	start_mock
	start_caddy
	VKEY=$("$BIN/benchctl" setup -url "$GW" -master "$BENCH_MASTER_KEY")
	local f
	for f in chat route; do
		"$BIN/benchctl" check -url "$GW/v1/chat/completions" -key "$VKEY" -body-file "$RUN/$f.json"
		"$BIN/benchctl" check -url "$GW/v1/chat/completions" -key "$VKEY" -body-file "$RUN/$f-stream.json" -stream
	done
	log "smoke test: provider:model and the route answer 200"
	local round m c stream sfx
	for ((round = 1; round <= ROUNDS; round++)); do
		for m in $MODES; do
			stream=0 sfx=""
			if [[ $m == stream ]]; then stream=1 sfx=-stream; fi
			for c in 1 64; do
				run_row "$m-c$c-r$round-plain" "$GW/v1/chat/completions" "$RUN/chat$sfx.json" "$stream" "$c" 0
				run_row "$m-c$c-r$round-route" "$GW/v1/chat/completions" "$RUN/route$sfx.json" "$stream" "$c" 0
			done
		done
	done
	mkdir -p "$RESULTS"
	local kind rps p50 prps pp50
	{
		echo "# A route with a healthy first target against provider:model"
		echo
		echo "Commit \`$COMMIT\`, $(go version | cut -d' ' -f3), $(nproc) cores; \`$COMMAND\`."
		echo "$DURATION per row after a $WARMUP warm-up, rows alternating plain / route, $ROUNDS rounds;"
		echo "(c) names \`mock:bench\`, (r) the route \`bench-route\` (to mock:bench, fallback mock:bench-fallback)."
		echo
		echo "| mode | c | round | (c) req/s | (c) p50 ms | (r) req/s | (r) p50 ms | (r)/(c) req/s |"
		echo "|---|---|---|---|---|---|---|---|"
		for m in $MODES; do for c in 1 64; do for ((round = 1; round <= ROUNDS; round++)); do
			for kind in plain route; do
				f=$ROWS/$m-c$c-r$round-$kind.json
				rps=$(sed -n 's/^  "rps": \([0-9.]*\).*/\1/p' "$f")
				p50=$(sed -n 's/^    "p50_ms": \([0-9.]*\).*/\1/p' "$f" | head -1)
				if [[ $kind == plain ]]; then prps=$rps pp50=$p50; fi
			done
			printf '| %s | %s | %s | %.0f | %.3f | %.0f | %.3f | %.3f |\n' "$m" "$c" "$round" "$prps" "$pp50" "$rps" "$p50" \
				"$(awk -v a="$rps" -v b="$prps" 'BEGIN { print (b > 0 ? a / b : 0) }')"
		done; done; done
	} >"$RESULTS/route.md"
	cat "$RESULTS/route.md"
	log "wrote bench/results/route.md"
}

# --- PostgreSQL mode ---------------------------------------------------------

# db_url_of name: DATABASE_URL with its database replaced by name.
db_url_of() {
	local base=${DATABASE_URL%%\?*} query=""
	[[ $DATABASE_URL == *\?* ]] && query="?${DATABASE_URL#*\?}"
	echo "${base%/*}/$1$query"
}

commits() { # the committed transactions of the bench database so far
	psql "$DATABASE_URL" -Atqc "SELECT xact_commit FROM pg_stat_database WHERE datname = '$BENCH_DB'"
}

start_pg_gateway() { # index port: one llm_gateway with database_url on port
	local i=$1 port=$2
	cat >"$RUN/Caddyfile.pg$i" <<EOF
{
	admin off
	persist_config off
	auto_https off
	grace_period 2s
	log {
		level WARN
	}
}

# (d) the gateway in PostgreSQL mode, everything on as in (c).
http://127.0.0.1:$port {
	bind 127.0.0.1
	llm_gateway {
		master_key {env.BENCH_MASTER_KEY}
		database_url {env.GATEWAY_DATABASE_URL}
		provider mock {
			base_url $MOCK/v1
		}
		price mock:bench 0.15 0.60
	}
}
EOF
	XDG_CONFIG_HOME=$RUN/xdg$i/config XDG_DATA_HOME=$RUN/xdg$i/data GATEWAY_DATABASE_URL=$PG_URL \
		"$BIN/caddy" run --config "$RUN/Caddyfile.pg$i" --adapter caddyfile >"$RUN/caddy.pg$i.log" 2>&1 &
	PG_PIDS+=($!)
}

json_field() { # file field: a top-level number of a loadgen report
	sed -n "s/^  \"$2\": \([0-9.]*\).*/\1/p" "$1"
}

latency_field() { # file field: a latency figure of a loadgen report
	sed -n "s/^    \"$2\": \([0-9.]*\).*/\1/p" "$1" | head -1
}

# fleet_row name body stream c: c connections spread over the three
# PostgreSQL instances at once (one loadgen each); the row's rps is their
# sum, its latencies those of the first instance's share.
fleet_row() {
	local name=$1 body=$2 stream=$3 c=$4 i share pids=() rps=0 r
	for i in 0 1 2; do
		share=$(((c + 2 - i) / 3))
		((share > 0)) || share=1
		local args=(-url "http://127.0.0.1:${PG_PORTS[$i]}/v1/chat/completions" -body-file "$body" -c "$share"
			-d "$DURATION" -warmup "$WARMUP" -json -H "Authorization: Bearer $VKEY")
		((stream)) && args+=(-stream)
		[[ -n $KEYS_FILE ]] && args+=(-keys-file "$KEYS_FILE")
		"$BIN/loadgen" "${args[@]}" >"$ROWS/$name.$i.json" 2>"$ROWS/$name.$i.err" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || true; done
	for i in 0 1 2; do
		r=$(json_field "$ROWS/$name.$i.json" rps)
		rps=$(awk -v a="$rps" -v b="${r:-0}" 'BEGIN { print a + b }')
		[[ -s $ROWS/$name.$i.err ]] || rm -f "$ROWS/$name.$i.err"
	done
	echo "$rps" >"$ROWS/$name.rps"
	log "$(printf '%-22s %10.0f req/s over 3 instances' "$name" "$rps")"
}

# round_trips: database statements per request on the hot path. An
# admission is one statement and settlements are group-committed, one
# statement per batch; each runs in a transaction of its own, so the
# database's commit count is its round trips. The commits of the instances
# idle for as long (lease renewals, cache reloads) are subtracted. The
# statistics reach pg_stat_database within 10 s of a backend going idle,
# hence the waits.
round_trips() {
	local n=2000 t0 t1 c0 c1 i0 i1 reqs
	sleep 11
	c0=$(commits)
	t0=$(date +%s)
	"$BIN/loadgen" -url "http://127.0.0.1:${PG_PORTS[0]}/v1/chat/completions" -body-file "$RUN/chat.json" \
		-c 1 -n "$n" -json -H "Authorization: Bearer $VKEY" >"$ROWS/roundtrips.json"
	t1=$(date +%s)
	sleep 11
	c1=$(commits)
	i0=$c1
	sleep $((t1 - t0 + 1))
	sleep 11
	i1=$(commits)
	reqs=$(json_field "$ROWS/roundtrips.json" requests)
	echo "$reqs $((c1 - c0)) $((i1 - i0))" >"$ROWS/roundtrips"
	log "round trips: $((c1 - c0)) commits for $reqs requests (c=1), $((i1 - i0)) commits idle"
}

fleet() {
	command -v psql >/dev/null || {
		echo "bench: fleet needs psql" >&2
		return 1
	}
	psql "$DATABASE_URL" -Atqc "SELECT 1" >/dev/null || {
		echo "bench: no PostgreSQL answers at BENCH_DATABASE_URL" >&2
		return 1
	}
	BENCH_DB=llmgw_bench_$(date +%s)_$$
	psql "$DATABASE_URL" -Atqc "CREATE DATABASE $BENCH_DB" >/dev/null
	PG_URL=$(db_url_of "$BENCH_DB")
	write_bodies
	write_caddyfile "$RUN/store"
	start_mock
	log "starting caddy: (b) $PROXY reverse_proxy, (c) $GW llm_gateway (Badger)"
	start_caddy
	VKEY=$("$BIN/benchctl" setup -url "$GW" -master "$BENCH_MASTER_KEY")
	local badger_key=$VKEY pg_key i
	log "starting (d): three llm_gateway instances on database $BENCH_DB, ports ${PG_PORTS[*]}"
	for i in 0 1 2; do start_pg_gateway "$i" "${PG_PORTS[$i]}"; done
	for i in 0 1 2; do
		"$BIN/benchctl" wait -url "http://127.0.0.1:${PG_PORTS[$i]}/health/readiness" -timeout 60s >/dev/null || {
			cat "$RUN/caddy.pg$i.log" >&2
			return 1
		}
	done
	pg_key=$("$BIN/benchctl" setup -url "http://127.0.0.1:${PG_PORTS[0]}" -master "$BENCH_MASTER_KEY")
	for i in 0 1 2; do
		"$BIN/benchctl" check -url "http://127.0.0.1:${PG_PORTS[$i]}/v1/chat/completions" -key "$pg_key" -body-file "$RUN/chat.json"
	done
	"$BIN/benchctl" check -url "http://127.0.0.1:${PG_PORTS[0]}/v1/chat/completions" -key "$pg_key" -body-file "$RUN/chat-stream.json" -stream
	log "smoke test: every instance answers 200 with the virtual key"

	local row m c stream body u
	if ((FLEET_USERS > 1)); then
		: >"$RUN/keys.badger"
		: >"$RUN/keys.pg"
		for ((u = 0; u < FLEET_USERS; u++)); do
			"$BIN/benchctl" setup -url "$GW" -master "$BENCH_MASTER_KEY" -user "bench-user-$u" >>"$RUN/keys.badger" 2>/dev/null
			"$BIN/benchctl" setup -url "http://127.0.0.1:${PG_PORTS[0]}" -master "$BENCH_MASTER_KEY" -user "bench-user-$u" >>"$RUN/keys.pg" 2>/dev/null
		done
		log "many-account rows: $FLEET_USERS users, each with its own key and budget, on (c) and (d)"
	fi
	for row in nonstream:1 nonstream:64 stream:64; do
		m=${row%:*} c=${row#*:}
		stream=0 body=$RUN/chat.json
		[[ $m == stream ]] && stream=1 body=$RUN/chat-stream.json
		VKEY=$badger_key
		run_row "$m-c$c-b" "$PROXY/v1/chat/completions" "$body" "$stream" "$c" 0
		run_row "$m-c$c-c" "$GW/v1/chat/completions" "$body" "$stream" "$c" 0
		VKEY=$pg_key
		run_row "$m-c$c-d" "http://127.0.0.1:${PG_PORTS[0]}/v1/chat/completions" "$body" "$stream" "$c" 0
		fleet_row "$m-c$c-d3" "$body" "$stream" "$c"
		if ((FLEET_USERS > 1 && c > 1)); then
			KEYS_FILE=$RUN/keys.badger
			run_row "$m-c$c-cm" "$GW/v1/chat/completions" "$body" "$stream" "$c" 0
			KEYS_FILE=$RUN/keys.pg
			run_row "$m-c$c-dm" "http://127.0.0.1:${PG_PORTS[0]}/v1/chat/completions" "$body" "$stream" "$c" 0
			fleet_row "$m-c$c-d3m" "$body" "$stream" "$c"
			KEYS_FILE=""
		fi
	done
	round_trips
	fleet_report
}

# fleet_report writes bench/results/fleet.md from the rows.
fleet_report() {
	local out=$RESULTS/fleet.md row m c t f rps reqs busy idle
	mkdir -p "$RESULTS"
	{
		echo "# PostgreSQL mode"
		echo
		echo "\`$COMMAND\` at $COMMIT, $(go version | cut -d' ' -f3), $(nproc) cores; $DURATION per row after a $WARMUP warm-up."
		echo
		echo "| row | target | req/s | p50 ms | p99 ms | errors |"
		echo "|---|---|---:|---:|---:|---:|"
		for row in nonstream:1 nonstream:64 stream:64; do
			m=${row%:*} c=${row#*:}
			for t in b c d d3 cm dm d3m; do
				f=$ROWS/$m-c$c-$t.json
				[[ -e $f || -e $ROWS/$m-c$c-$t.0.json ]] || continue
				rps=""
				if [[ $t == d3* ]]; then
					f=$ROWS/$m-c$c-$t.0.json
					rps=$(cat "$ROWS/$m-c$c-$t.rps")
				fi
				[[ -n $rps ]] || rps=$(json_field "$f" rps)
				printf '| %s c=%s | %s | %.0f | %.3f | %.3f | %s |\n' "$m" "$c" "$t" "${rps:-0}" \
					"$(latency_field "$f" p50_ms)" "$(latency_field "$f" p99_ms)" "$(json_field "$f" errors)"
			done
		done
		echo
		echo "b: plain reverse_proxy; c: llm_gateway, Badger; d: llm_gateway with database_url, one instance;"
		echo "d3: three instances on one database, the connections split over them (req/s summed; latencies of the first instance's share)."
		echo "cm, dm, d3m: as c, d, d3 with the requests spread over $FLEET_USERS users, each with its own key and budget (worker i uses account i mod $FLEET_USERS); c, d, d3 bill one user and one key."
		echo
		read -r reqs busy idle <"$ROWS/roundtrips"
		echo "Database round trips: $busy statements committed for $reqs non-stream requests at c=1 on (d), $idle by the idle instances over as long: $(awk -v b="$busy" -v i="$idle" -v n="$reqs" 'BEGIN { printf "%.2f", (b - i) / n }') per request."
	} >"$out"
	log "wrote bench/results/fleet.md"
}

# --- main --------------------------------------------------------------------

command -v go >/dev/null || {
	echo "bench: go is not on PATH" >&2
	exit 1
}
for p in "$MOCK_PORT" "$PROXY_PORT" "$GW_PORT" "$FSYNC_PORT" "$((PORT + 9))" "${PG_PORTS[@]}"; do
	if ! port_free "$p"; then
		echo "bench: port $p is in use; set BENCH_PORT to another base port" >&2
		exit 1
	fi
done

build
rm -rf "$RUN"
mkdir -p "$ROWS"
BENCH_MASTER_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export BENCH_MASTER_KEY
VKEY=""

case $MODE in
sweep) sweep ;;
scale) scale ;;
fleet) fleet ;;
route) route ;;
esac
