#!/usr/bin/env bash
# Wall time of a run under Slack's real tier limits (simulator --rate-scale 1, lastseen's own
# budgets at the default tiers: 20/min for Tier 2, 50/min for Tier 3) compared with
#   the slowest method's time  = (calls - 1) / tier rate   (the first call of a bucket is free)
#   the sum over all methods   = what a run calling one method after another would take.
#
#   bench/collect/tiers.sh                    # 1,000 users, plan pro
#   USERS=3000 PAGE=100 bench/collect/tiers.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${LASTSEEN_BIN:-target/release/lastseen}
USERS=${USERS:-1000}
PLAN=${PLAN:-pro}
PAGE=${PAGE:-100}
WORK=$(mktemp -d)
trap 'kill "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

"$BIN" simulate --port 0 --plan "$PLAN" --users "$USERS" --history-days 120 --rate-scale 1 >"$WORK/sim.out" 2>"$WORK/sim.err" &
SIM_PID=$!
for _ in $(seq 1 120); do grep -q "user token" "$WORK/sim.out" 2>/dev/null && break; sleep 0.5; done
export SLACK_TOKEN=$(awk '/user token/ {print $3}' "$WORK/sim.out")
export LASTSEEN_SLACK__API_URL=$(awk '/web api/ {print $3}' "$WORK/sim.out")
export LASTSEEN_SLACK__USERS_PAGE_SIZE=$PAGE LASTSEEN_SLACK__ACCESS_LOGS_PAGE_SIZE=$PAGE
export LASTSEEN_LOG_FORMAT=json
START=$(date +%s.%N)
"$BIN" --lake "$WORK/lake" -q run >"$WORK/run.out" 2>"$WORK/run.err" || { tail -5 "$WORK/run.err"; exit 1; }
END=$(date +%s.%N)
python3 - "$(ls "$WORK"/lake/_lastseen/runs/*.json | tail -1)" "$START" "$END" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); wall = float(sys.argv[3]) - float(sys.argv[2])
# Each source's calls go to one rate bucket per (method, workspace); tiers per lastseen's table.
tier_rate = {2: 20 / 60, 3: 50 / 60, 4: 100 / 60}
tier = {"users": 2, "access_logs": 2, "billing": 2, "usergroups": 2, "workspaces": 3}
times = {}
for name, s in m["sources"].items():
    if s.get("status") != "collected" or name not in tier:
        continue
    times[name] = max(s["calls"] - 1, 0) / tier_rate[tier[name]]
    print(f"  {name:12} calls {s['calls']:>4}  tier {tier[name]}  calls/rate {times[name]:6.1f} s  429s {s['rate_limited']}  waited {s['rate_wait_ms']/1000:6.1f} s")
print(f"wall {wall:.1f} s; slowest method {max(times.values()):.1f} s; sum of methods {sum(times.values()):.1f} s")
PY
