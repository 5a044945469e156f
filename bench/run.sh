#!/usr/bin/env bash
# Every comparison of issue 18 in one command, each side by side with its peer in the same run:
#
#   reports  lastseen report R (whole process, CSV) vs DuckDB running R's unoptimised SQL
#            (query/reports/oracle/R.sql, over the raw tables) and R's own SQL, on a generated
#            lake of ACCOUNTS accounts × DAYS days; every answer is checked row for row against
#            lastseen's CSV (so the rollups equal the oracle), plus the bench's own oracle mode.
#   collect  a first run of a Pro org of COLLECT_USERS users with COLLECT_DAYS days of access
#            logs (users + access_logs, limits off) vs a plain Python requests + pyarrow client
#            (bench/collect/python_client.py) on the same simulator, and the simulator's ceiling
#            (a raw fetch loop that decodes nothing); both lakes are checked to hold the same rows.
#   daily    a 500,000-user Pro org: the first run (yesterday, all sources) and the next day's
#            run, wall time and peak RSS (no peer: the target is the memory ceiling).
#
#   bench/run.sh [WORKDIR]                       # everything, release build, default sizes
#   ONLY=reports bench/run.sh                    # one part (reports | collect | daily, comma-separated)
#   ACCOUNTS=50000 COLLECT_USERS=20000 DAILY_USERS=50000 bench/run.sh /tmp/small   # a quick run
#
# Environment: PROFILE (release | debug, default release; builds with cargo unless BUILD=0),
# PYTHON (a Python with duckdb, pyarrow and requests; default: a venv made in WORKDIR with
# duckdb==2.0.0), RUNS (default 3), THREADS (DuckDB threads, default 2 = the machine's cores).
# The generated report lake is kept in WORKDIR/lake-ACCOUNTS and reused by later runs.
# Results: a table on stdout and WORKDIR/results.json.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
WORK=${1:-/tmp/lastseen-bench}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
PROFILE=${PROFILE:-release}
ONLY=${ONLY:-reports,collect,daily}
ACCOUNTS=${ACCOUNTS:-500000}
DAYS=${DAYS:-365}
SNAPSHOTS=${SNAPSHOTS:-90}
COLLECT_USERS=${COLLECT_USERS:-100000}
COLLECT_DAYS=${COLLECT_DAYS:-1200}
DAILY_USERS=${DAILY_USERS:-500000}
DAILY_HISTORY=${DAILY_HISTORY:-30}
RUNS=${RUNS:-3}
THREADS=${THREADS:-2}
REPORTS=${REPORTS:-dormant usage seats orphans terminated review}
ORACLE_DIR=${ORACLE_DIR:-query/reports/oracle}

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
if [ "${BUILD:-1}" = 1 ]; then
    if [ "$PROFILE" = release ]; then
        cargo build --release --locked --workspace --bins >&2
    else
        cargo build --locked --workspace --bins >&2
    fi
fi
BIN=${LASTSEEN_BIN:-$TARGET/$PROFILE/lastseen}
GEN=${BENCH_BIN:-$TARGET/$PROFILE/lastseen-bench-last-seen}

if [ -z "${PYTHON:-}" ]; then
    if [ ! -x "$WORK/venv/bin/python" ]; then
        python3 -m venv "$WORK/venv"
        "$WORK/venv/bin/pip" install -q duckdb==2.0.0 pyarrow requests
    fi
    PYTHON=$WORK/venv/bin/python
fi
RESULTS=$WORK/results.jsonl
: >"$RESULTS"

# time_cmd NAME CMD...: runs CMD under GNU time, appends {"name", "wall_s", "rss_mib"} to RESULTS.
time_cmd() {
    local name=$1
    shift
    /usr/bin/time -f "%e %M" -o "$WORK/time.out" "$@" >"$WORK/last.stdout"
    read -r wall kb <"$WORK/time.out"
    echo "{\"name\": \"$name\", \"wall_s\": $wall, \"rss_mib\": $((kb / 1024))}" >>"$RESULTS"
    echo "  $name: ${wall} s, $((kb / 1024)) MiB" >&2
}

# wait_sim OUT: the simulator's API URL and token, once it printed them.
start_sim() {
    local out=$1
    shift
    "$BIN" simulate --port 0 --rate-scale 0 "$@" >"$out" 2>"$out.err" &
    SIM_PID=$!
    for _ in $(seq 1 1200); do
        grep -q "user token" "$out" 2>/dev/null && break
        kill -0 "$SIM_PID" 2>/dev/null || { cat "$out.err" >&2; exit 1; }
        sleep 0.25
    done
    API=$(awk '/web api/ {print $3}' "$out")
    SLACK_TOKEN=$(awk '/user token/ {print $3}' "$out")
    export SLACK_TOKEN
}
stop_sim() {
    kill "$SIM_PID" 2>/dev/null || true
    wait "$SIM_PID" 2>/dev/null || true
}
trap 'stop_sim' EXIT
SIM_PID=

has() { [[ ",$ONLY," == *",$1,"* ]]; }

if has reports; then
    LAKE=$WORK/lake-$ACCOUNTS
    if [ ! -f "$LAKE/.generated" ]; then
        rm -rf "$LAKE"
        echo "generating the report lake: $ACCOUNTS accounts, $DAYS days, $SNAPSHOTS snapshots" >&2
        time_cmd generate "$GEN" generate "$LAKE" "$ACCOUNTS" "$DAYS" "$SNAPSHOTS"
        touch "$LAKE/.generated"
    fi
    if [ ! -d "$LAKE/slack_usergroup_members" ]; then
        # A lake generated before the generator wrote the review's raw tables (user groups,
        # SCIM groups, imported decisions, the deprovisioning journal): add them, and today's
        # rollups again, so DuckDB can run review's oracle too.
        "$GEN" entitlements "$LAKE" "$ACCOUNTS" >&2
        # DuckDB reads every Parquet file under a partition: delete the superseded ones (this
        # bench lake has no reader that could still need them).
        LASTSEEN_LAKE__KEEP_SUPERSEDED=0s "$BIN" --lake "$LAKE" -q vacuum --apply >&2
    fi
    newest_report_has_risk=$("$BIN" --lake "$LAKE" -q sql --format csv \
        "SELECT count(*) = count(risk) AS ok FROM account_report WHERE dt = (SELECT max(dt) FROM account_report)" | tail -1)
    if [ "$newest_report_has_risk" != "true" ]; then
        # Today's rollup was derived before account_report had `risk` and `days_since_last_seen`
        # (and was stored in dormant's order): derive it again, then drop the superseded file.
        "$GEN" rollups "$LAKE" >&2
        LASTSEEN_LAKE__KEEP_SUPERSEDED=0s "$BIN" --lake "$LAKE" -q vacuum --apply >&2
    fi
    # Flush the generator's writes first: the reports write their exports (review's is 180 MB,
    # synced as it goes) and must not queue behind gigabytes of the lake's dirty pages.
    sync
    echo "optimised reports vs their oracle SQL, both in DataFusion:" >&2
    "$GEN" oracle "$LAKE" >&2
    for r in $REPORTS; do
        echo "report $r" >&2
        # Only the reports that take --days get it (terminated does not: it refuses the flag).
        days_arg=(--days 90)
        [ "$r" = terminated ] && days_arg=()
        for i in $(seq 1 "$RUNS"); do
            time_cmd "lastseen report $r" "$BIN" --lake "$LAKE" -q report "$r" "${days_arg[@]}" --format csv \
                --output "$WORK/$r.csv"
        done
        oracle=$ORACLE_DIR/$r.sql
        [ -f "$oracle" ] || oracle=query/reports/$r.sql
        "$PYTHON" bench/reports/duckdb_side_by_side.py "$LAKE" "$r" --days 90 --runs "$RUNS" \
            --threads "$THREADS" --sql "$oracle" --check "$WORK/$r.csv" >"$WORK/duck-$r-oracle.out"
        tail -2 "$WORK/duck-$r-oracle.out" >&2
        tail -1 "$WORK/duck-$r-oracle.out" | sed "s/^{/{\"name\": \"duckdb oracle $r\", /" >>"$RESULTS"
        # The report's own SQL over the rollups, in DuckDB: `usage` over 90 days needs 90 days of
        # rollups (with fewer, lastseen answers from the oracle, which DuckDB just checked).
        if [ "$oracle" != "query/reports/$r.sql" ] && { [ "$r" != usage ] || [ "$SNAPSHOTS" -ge 90 ]; }; then
            "$PYTHON" bench/reports/duckdb_side_by_side.py "$LAKE" "$r" --days 90 --runs "$RUNS" \
                --threads "$THREADS" --check "$WORK/$r.csv" >"$WORK/duck-$r-rollup.out"
            tail -1 "$WORK/duck-$r-rollup.out" | sed "s/^{/{\"name\": \"duckdb rollup $r\", /" >>"$RESULTS"
        fi
    done
fi

if has collect; then
    echo "collection: $COLLECT_USERS users, $COLLECT_DAYS days of access logs, plan pro" >&2
    start_sim "$WORK/sim-collect.out" --plan pro --users "$COLLECT_USERS" --history-days "$COLLECT_DAYS"
    echo "  simulator ceiling (raw fetch loop):" >&2
    "$PYTHON" bench/collect/python_client.py "$API" --raw | tee "$WORK/raw.json" >&2
    sed "s/^{/{\"name\": \"simulator ceiling\", /" "$WORK/raw.json" >>"$RESULTS"
    rm -rf "$WORK/py-lake" "$WORK/collect-lake"
    time_cmd "python client" "$PYTHON" bench/collect/python_client.py "$API" "$WORK/py-lake"
    LASTSEEN_SLACK__API_URL=$API LASTSEEN_SLACK__RATE_LIMITS__ENABLED=false \
        LASTSEEN_SLACK__SOURCES=users,access_logs \
        time_cmd "lastseen first run" "$BIN" --lake "$WORK/collect-lake" -q run 2>"$WORK/collect-run.err"
    stop_sim
    # Same rows: every access-log entry and user of one lake is in the other.
    "$PYTHON" - "$WORK/py-lake" "$WORK/collect-lake" <<'PY' >&2
import sys, duckdb
py, ls = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
def q(sql):
    return con.execute(sql).fetchall()
key = "user_id, epoch(date_first)::BIGINT, epoch(date_last)::BIGINT, ip, user_agent"
a = f"SELECT {key} FROM read_parquet('{py}/slack_access_logs/*/*.parquet')"
b = f"SELECT {key} FROM read_parquet('{ls}/slack_access_logs/*/*.parquet')"
only_py = q(f"SELECT count(*) FROM ({a} EXCEPT ALL {b})")[0][0]
only_ls = q(f"SELECT count(*) FROM ({b} EXCEPT ALL {a})")[0][0]
n = q(f"SELECT count(*) FROM ({a})")[0][0]
u_py = q(f"SELECT count(DISTINCT user_id) FROM read_parquet('{py}/slack_users/*/*.parquet')")[0][0]
u_ls = q(f"SELECT count(DISTINCT user_id) FROM read_parquet('{ls}/slack_users/*/*.parquet')")[0][0]
print(f"  same rows: access logs {n} (only python {only_py}, only lastseen {only_ls}); users {u_py} / {u_ls}")
if only_py or only_ls or u_py != u_ls:
    sys.exit("the two collections differ")
PY
fi

if has daily; then
    echo "daily run: $DAILY_USERS users, plan pro, all sources" >&2
    start_sim "$WORK/sim-daily.out" --plan pro --users "$DAILY_USERS" --history-days "$DAILY_HISTORY"
    rm -rf "$WORK/daily-lake"
    TODAY=$(date -u +%F)
    YESTERDAY=$(date -u -d yesterday +%F)
    export LASTSEEN_SLACK__API_URL=$API LASTSEEN_SLACK__RATE_LIMITS__ENABLED=false
    time_cmd "daily: first run" "$BIN" --lake "$WORK/daily-lake" -q run --date "$YESTERDAY" 2>"$WORK/daily1.err"
    time_cmd "daily: next day" "$BIN" --lake "$WORK/daily-lake" -q run --date "$TODAY" 2>"$WORK/daily2.err"
    time_cmd "daily: re-run" "$BIN" --lake "$WORK/daily-lake" -q run --date "$TODAY" 2>"$WORK/daily3.err"
    unset LASTSEEN_SLACK__API_URL LASTSEEN_SLACK__RATE_LIMITS__ENABLED
    stop_sim
fi

# The summary: medians per name, and the ratios the issue's targets are about.
"$PYTHON" - "$RESULTS" "$WORK/results.json" "$ACCOUNTS" "$COLLECT_USERS" "$DAILY_USERS" "$PROFILE" <<'PY'
import json, statistics, sys, platform, os
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["name"], []).append(r)
out = {"profile": sys.argv[6], "accounts": int(sys.argv[3]), "collect_users": int(sys.argv[4]),
       "daily_users": int(sys.argv[5]), "cpus": os.cpu_count(), "machine": platform.platform(), "results": {}}
def med(name, key):
    v = [r[key] for r in by.get(name, []) if key in r]
    return statistics.median_low(v) if v else None
print(f"\n{'what':44} {'median s':>9} {'peak MiB':>9}")
for name, rs in by.items():
    s = med(name, "wall_s") or med(name, "median_s") or med(name, "seconds")
    m = med(name, "rss_mib")
    out["results"][name] = {"seconds": s, "rss_mib": m, "runs": len(rs)}
    print(f"{name:44} {s if s is not None else '':>9} {m if m is not None else '':>9}")
print()
for r in ["dormant", "usage", "seats", "orphans", "terminated", "review"]:
    ours = med(f"lastseen report {r}", "wall_s")
    duck = med(f"duckdb oracle {r}", "median_s")
    if ours and duck:
        print(f"{r:12} lastseen {ours:7.2f} s   duckdb (oracle SQL, raw tables) {duck:7.2f} s   ratio {duck / ours:5.1f}x")
        out["results"][f"ratio {r}"] = round(duck / ours, 2)
py = med("python client", "wall_s")
ls = med("lastseen first run", "wall_s")
if py and ls:
    print(f"first run    lastseen {ls:7.2f} s   python client {py:7.2f} s   ratio {py / ls:5.1f}x")
    out["results"]["ratio first run"] = round(py / ls, 2)
json.dump(out, open(sys.argv[2], "w"), indent=1)
print(f"\nwritten: {sys.argv[2]}")
PY
