#!/usr/bin/env bash
# Peak RSS and wall time of daily runs of a 500,000-user Pro organisation against the Slack
# simulator on loopback (rate limits off), each in its own process (/usr/bin/time -f %M):
# a first run (empty lake), the next day, and re-runs of that day on copies of the lake.
#
#   CARGO_TARGET_DIR=… bench/daily/memory.sh WORKDIR [USERS] [RERUNS] [ENV=VALUE …]
#
# Extra ENV=VALUE arguments are set for every run (e.g. MALLOC_ARENA_MAX=16 to see glibc's
# default arena count, LASTSEEN_LAKE__DERIVE_MEMORY_MB=320). Release build; prints one line per run.
set -euo pipefail
W=${1:?usage: memory.sh WORKDIR [USERS] [RERUNS] [ENV=VALUE …]}
USERS=${2:-500000}
RERUNS=${3:-3}
shift $(( $# < 3 ? $# : 3 ))
B=${CARGO_TARGET_DIR:-target}/release/lastseen
[ -x "$B" ] || cargo build --release --locked --bin lastseen
mkdir -p "$W"
"$B" simulate --users "$USERS" --plan pro --port 0 --rate-scale 0 > "$W/sim.out" 2> "$W/sim.err" &
SIM=$!
trap 'kill $SIM 2>/dev/null || true' EXIT
for _ in $(seq 60); do grep -q "user token" "$W/sim.out" 2>/dev/null && break; sleep 1; done
export SLACK_TOKEN=$(awk '/user token/ {print $3}' "$W/sim.out")
export LASTSEEN_SLACK__API_URL=$(awk '/web api/ {print $3}' "$W/sim.out") LASTSEEN_SLACK__RATE_LIMITS__ENABLED=false
TODAY=$(date -u +%F); YESTERDAY=$(date -u -d yesterday +%F)
run() { # LAKE DATE TAG
    env "${@:4}" /usr/bin/time -f "%e s %M KiB" "$B" --lake "$1" -q run --date "$2" 2> "$W/$3.err" > /dev/null || true
    echo "$3: $(tail -1 "$W/$3.err")"
}
rm -rf "$W/lake"
run "$W/lake" "$YESTERDAY" first-run "$@"
run "$W/lake" "$TODAY" next-day "$@"
for i in $(seq "$RERUNS"); do
    rm -rf "$W/lake-rerun"; cp -a "$W/lake" "$W/lake-rerun"
    run "$W/lake-rerun" "$TODAY" "re-run-$i" "$@"
done
