#!/usr/bin/env bash
# Re-derivation benchmark (issue 13, point 8; audit D6): the memory of `derive_all` when late
# evidence for the first day of a year of history makes it re-derive that day's activity_daily
# and re-fold accounts and last_seen for every day after it (what `lastseen backfill` of an old
# day does after collecting).
#
# The lake is what a year of daily runs leaves, written directly by the bench generator (365
# daily runs of a 500,000-user organisation against the simulator would take most of a day):
#   generate  DAYS of activity_daily, accounts for the last 90 days, today's last_seen
#   history   a slack_users and a last_seen snapshot for each of the DAYS days
#   rederive  one access-log entry for the first day, then derive_all for today, under
#             /usr/bin/time -v (wall time and peak RSS of the whole process)
#
#   bench/derive/rederive_year.sh                                  # 500,000 accounts, 365 days
#   ACCOUNTS=100000 DAYS=120 bench/derive/rederive_year.sh
#   BENCH_BIN=target/debug/lastseen-bench-last-seen ACCOUNTS=2000 DAYS=10 bench/derive/rederive_year.sh
#
# Build first: cargo build --release -p lastseen-bench-last-seen (or the debug build, see
# BENCH_BIN). LAKE=<dir> re-uses a lake built before (re-deriving it again is the same work:
# each run adds new late evidence for the first day); KEEP=1 keeps the one built here. The lake
# takes about 8 GB at full size. Results: bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BENCH_BIN:-target/release/lastseen-bench-last-seen}
ACCOUNTS=${ACCOUNTS:-500000}
DAYS=${DAYS:-365}
WORK=$(mktemp -d)
cleanup() { [ "${KEEP:-0}" = 1 ] && echo "kept $WORK" || rm -rf "$WORK"; }
trap cleanup EXIT

if [ -z "${LAKE:-}" ]; then
    LAKE="$WORK/lake"
    echo "building the lake: $ACCOUNTS accounts, $DAYS days"
    "$BIN" generate "$LAKE" "$ACCOUNTS" "$DAYS" 90 >"$WORK/generate.out" 2>"$WORK/generate.err" \
        || { tail -5 "$WORK/generate.err"; exit 1; }
    "$BIN" history "$LAKE" "$ACCOUNTS" "$DAYS" >"$WORK/history.out" 2>"$WORK/history.err" \
        || { tail -5 "$WORK/history.err"; exit 1; }
fi

/usr/bin/time -v "$BIN" rederive "$LAKE" >"$WORK/rederive.out" 2>"$WORK/rederive.err" \
    || { tail -20 "$WORK/rederive.err"; exit 1; }
cat "$WORK/rederive.out"
SECS=$(grep "Elapsed (wall clock)" "$WORK/rederive.err" | awk '{print $NF}' \
    | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
RSS_KB=$(grep "Maximum resident set size" "$WORK/rederive.err" | awk '{print $NF}')
echo "re-derive: $ACCOUNTS accounts, $DAYS days: wall ${SECS} s, peak RSS $((RSS_KB / 1024)) MiB"
