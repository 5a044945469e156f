#!/usr/bin/env bash
# Collection benchmark: `lastseen run` against `lastseen simulate` over loopback, rate limits off
# on both sides, into a fresh local lake. Reports rows/s and peak RSS of the run (GNU time -v).
#
#   bench/collect/run.sh                      # 100,000 users, 730 days of history, plan pro
#   USERS=20000 HISTORY_DAYS=365 bench/collect/run.sh
#   LASTSEEN_BIN=target/debug/lastseen bench/collect/run.sh
#
# Build first: cargo build --release --bin lastseen
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${LASTSEEN_BIN:-target/release/lastseen}
USERS=${USERS:-100000}
HISTORY_DAYS=${HISTORY_DAYS:-730}
PLAN=${PLAN:-pro}
SOURCES=${SOURCES:-auto}
STAGE_MB=${STAGE_MB:-64}
WORK=$(mktemp -d)
trap 'kill "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

"$BIN" simulate --port 0 --plan "$PLAN" --users "$USERS" --history-days "$HISTORY_DAYS" --rate-scale 0 \
    >"$WORK/sim.out" 2>"$WORK/sim.err" &
SIM_PID=$!
for _ in $(seq 1 600); do
    grep -q "user token" "$WORK/sim.out" 2>/dev/null && break
    sleep 0.5
done
API=$(awk '/web api/ {print $3}' "$WORK/sim.out")
TOKEN=$(awk '/user token/ {print $3}' "$WORK/sim.out")
[ -n "$API" ] && [ -n "$TOKEN" ] || { cat "$WORK/sim.out" "$WORK/sim.err"; exit 1; }

export SLACK_TOKEN="$TOKEN"
export LASTSEEN_SLACK__API_URL="$API"
export LASTSEEN_SLACK__RATE_LIMITS__ENABLED=false
export LASTSEEN_SLACK__SOURCES="$SOURCES"
export LASTSEEN_LAKE__STAGE_MEMORY_MB="$STAGE_MB"
export LASTSEEN_LOG_FORMAT=json
LAKE="$WORK/lake"

/usr/bin/time -v "$BIN" --lake "$LAKE" -q run >"$WORK/run.out" 2>"$WORK/run.err" || {
    tail -20 "$WORK/run.err"; exit 1; }

SECS=$(grep "Elapsed (wall clock)" "$WORK/run.err" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
RSS_KB=$(grep "Maximum resident set size" "$WORK/run.err" | awk '{print $NF}')
MANIFEST=$(ls "$LAKE"/_lastseen/runs/*.json | tail -1)
python3 - "$MANIFEST" "$SECS" "$RSS_KB" "$USERS" "$HISTORY_DAYS" "$PLAN" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); secs = float(sys.argv[2]); rss = int(sys.argv[3])
rows = sum(s.get("rows", 0) for s in m["sources"].values())
print(f"org: {sys.argv[4]} users, {sys.argv[5]} days of history, plan {sys.argv[6]}")
for name, s in sorted(m["sources"].items()):
    print(f"  {name:12} {s.get('status') or '':10} rows {s['rows']:>9}  calls {s['calls']:>5}  pages {s['pages']:>5}")
for name, t in sorted(m["tables"].items()):
    print(f"  table {name:26} rows {t['rows']:>9}  files {t['files']:>4}  bytes {t['bytes']:>11}")
print(f"rows collected: {rows}   wall: {secs:.1f} s   rows/s: {rows/secs:,.0f}   peak RSS: {rss/1024:,.0f} MiB")
PY
grep -o '"spilled[^}]*' "$WORK/run.err" | head -1 || true
grep -c "staged rows were spilled" "$WORK/run.err" >/dev/null && echo "staging: rows were spilled to _lastseen/staging during the run" || true
