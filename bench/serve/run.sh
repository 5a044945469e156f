#!/usr/bin/env bash
# `lastseen serve` under load (issue 16): N concurrent psql clients (default 8) each run every
# report view on a bench lake, several rounds; each view must first hold exactly the rows of
# `lastseen report R` (bench/serve/same_rows.py), then every answer must equal the one a single
# client got first, and the server's peak RSS (VmHWM) is reported next to its configured limits.
#
#   bench/serve/run.sh [LAKE_DIR] [ACCOUNTS] [CLIENTS] [ROUNDS]
#
# LAKE_DIR is generated when missing: `lastseen-bench-last-seen generate DIR ACCOUNTS 365 90`
# (default 500000 accounts, as in bench/RESULTS.md). Binaries from $CARGO_TARGET_DIR/$PROFILE
# (PROFILE=release by default; PROFILE=debug for a quick small run). Needs psql.
set -euo pipefail
cd "$(dirname "$0")/../.."
LAKE=${1:-/tmp/lsbench-serve}
ACCOUNTS=${2:-500000}
CLIENTS=${3:-8}
ROUNDS=${4:-3}
PROFILE=${PROFILE:-release}
BIN=${CARGO_TARGET_DIR:-target}/$PROFILE
MEMORY_MB=${MEMORY_MB:-1024}
export LASTSEEN_BENCH_PASSWORD='bench password, not secret'

if [ ! -d "$LAKE/_lastseen" ]; then
    echo "generating $ACCOUNTS accounts into $LAKE"
    /usr/bin/time -f "generate: %e s, %M KiB peak" "$BIN/lastseen-bench-last-seen" generate "$LAKE" "$ACCOUNTS" 365 90
fi

work=$(mktemp -d)
pid=""
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT
# Each client runs one psql after another; a closed connection's slot comes back a moment after
# psql exits, and a connection past max_connections is refused (53300), so leave room for that.
cat > "$work/lastseen.toml" <<TOML
[serve]
listen = "127.0.0.1:0"
max_connections = $((2 * CLIENTS + 2))
query_memory_mb = $MEMORY_MB
query_timeout = "30m"
[[serve.users]]
name = "bench"
password_env = "LASTSEEN_BENCH_PASSWORD"
TOML

"$BIN/lastseen" --config "$work/lastseen.toml" --lake "$LAKE" --log-format json serve > "$work/out" 2> "$work/serve.log" &
pid=$!
for _ in $(seq 1 600); do grep -q 'listening on' "$work/out" 2>/dev/null && break; sleep 0.5; done
port=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$work/out")
[ -n "$port" ] || { echo "serve did not start:"; cat "$work/serve.log"; exit 1; }
export PGPASSWORD=$LASTSEEN_BENCH_PASSWORD
conn="host=127.0.0.1 port=$port dbname=lastseen user=bench sslmode=disable"
views=$(psql "$conn" -X -A -t -c "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'report_%' ORDER BY 1")
echo "serving $LAKE on port $port; views: $(echo $views)"

# One client's answers, as a digest per view (rows sorted, so the order of ties does not matter).
answers() {
    for v in $views; do
        printf '%s %s\n' "$v" "$(psql "$conn" -X -A -t -v ON_ERROR_STOP=1 -c "SELECT * FROM $v" | sort | md5sum | cut -d' ' -f1)"
    done
}

# Correct first: every view, read over the wire, holds exactly the rows of the same report from
# `lastseen report R` (default parameters, as the view has them) on the same lake.
for v in $views; do
    r=${v#report_}
    psql "$conn" -X --csv -v ON_ERROR_STOP=1 -c "SELECT * FROM $v" > "$work/view-$r.csv"
    "$BIN/lastseen" --lake "$LAKE" -q report "$r" --format csv --output "$work/cli-$r.csv"
    printf '%s vs lastseen report %s: ' "$v" "$r"
    python3 bench/serve/same_rows.py "$work/view-$r.csv" "$work/cli-$r.csv" || { echo "view $v differs from the report"; exit 1; }
done

start=$(date +%s.%N)
answers > "$work/expected"
single=$(echo "$(date +%s.%N) - $start" | bc)
echo "one client, every view once: ${single}s"

start=$(date +%s.%N)
clients=()
for c in $(seq 1 "$CLIENTS"); do
    ( for r in $(seq 1 "$ROUNDS"); do answers > "$work/got.$c.$r"; done ) &
    clients+=($!)
done
wait "${clients[@]}"
elapsed=$(echo "$(date +%s.%N) - $start" | bc)

bad=0
for f in "$work"/got.*; do
    if ! cmp -s "$work/expected" "$f"; then echo "DIFFERENT: $f"; diff "$work/expected" "$f" || true; bad=1; fi
done
hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
queries=$(grep -c '"message":"query"' "$work/serve.log" || true)
failed=$(grep -c '"message":"query failed"' "$work/serve.log" || true)
echo "$CLIENTS clients x $ROUNDS rounds x $(echo $views | wc -w) views: ${elapsed}s; queries logged: $queries, failed: $failed"
echo "serve peak RSS: $((hwm / 1024)) MiB (query_memory_mb = $MEMORY_MB per query, max_connections = $((2 * CLIENTS + 2)))"
[ "$bad" = 0 ] && echo "every answer equals the single-client answer" || { echo "answers differ"; exit 1; }
