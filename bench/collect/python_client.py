"""The peer of `lastseen run` in the collection benchmark: a plain Python client (requests +
pyarrow) that reads the same Slack methods from the same simulator and writes the same rows to
zstd Parquet, partitioned the way lastseen partitions them.

Usage:
    python_client.py API_URL OUT_DIR [--users-page 200] [--logs-page 1000]
    python_client.py API_URL --raw          # the simulator's ceiling: fetch every page, parse nothing

The token is read from the SLACK_TOKEN environment variable (never from the command line).

What it does, sequentially as a straightforward client would (cursor paging cannot be
parallelised: each page names the next):
- `users.list` (cursor paging, `limit` = lastseen's default page size) → OUT/slack_users/dt=DAY/
- `team.accessLogs` in cursor mode (`limit` = 1000, lastseen's default) → one file per UTC day of
  `date_last`: OUT/slack_access_logs/dt=YYYY-MM-DD/part-0.parquet
It keeps the latest `date_last` per (team, user, ip, user_agent, date_first), as lastseen's
merge key does, so both lakes hold the same set of rows; it does not sort within a file.

--raw is a fetch loop with no JSON decoding (the next cursor is cut out of the body with a
string search) that measures how fast the simulator can answer one sequential client: if the
product's collection phase approaches this figure, the simulator is the bottleneck.

Prints one JSON line: {"users": n, "access_logs": n, "calls": n, "seconds": s, "bytes": b}.
"""
import argparse
import collections
import datetime as dt
import json
import os
import sys
import time

import requests


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("api")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--users-page", type=int, default=200)
    ap.add_argument("--logs-page", type=int, default=1000)
    ap.add_argument("--raw", action="store_true")
    a = ap.parse_args()
    token = os.environ["SLACK_TOKEN"]
    api = a.api.rstrip("/")
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    t0 = time.perf_counter()
    if a.raw:
        print(json.dumps(raw(s, api, a) | {"seconds": round(time.perf_counter() - t0, 3)}))
        return
    if not a.out:
        sys.exit("OUT_DIR is required unless --raw")
    import pyarrow as pa
    import pyarrow.parquet as pq

    calls = 0
    team_id = call(s, api, "auth.test", {})["team_id"]
    calls += 1

    # users.list
    users = collections.defaultdict(list)
    cursor = ""
    while True:
        params = {"limit": a.users_page}
        if cursor:
            params["cursor"] = cursor
        page = call(s, api, "users.list", params)
        calls += 1
        for m in page["members"]:
            p = m.get("profile") or {}
            users["team_id"].append(m.get("team_id") or team_id)
            users["user_id"].append(m["id"])
            users["name"].append(m.get("name"))
            users["real_name"].append(p.get("real_name") or m.get("real_name"))
            users["email"].append(p.get("email"))
            users["deleted"].append(bool(m.get("deleted")))
            users["is_admin"].append(bool(m.get("is_admin")))
            users["is_owner"].append(bool(m.get("is_owner")))
            users["is_primary_owner"].append(bool(m.get("is_primary_owner")))
            users["is_restricted"].append(bool(m.get("is_restricted")))
            users["is_ultra_restricted"].append(bool(m.get("is_ultra_restricted")))
            users["is_bot"].append(bool(m.get("is_bot")))
            users["is_app_user"].append(bool(m.get("is_app_user")))
            users["updated"].append(m.get("updated"))
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or ""
        if not cursor:
            break
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    os.makedirs(f"{a.out}/slack_users/dt={today}", exist_ok=True)
    pq.write_table(pa.table(users), f"{a.out}/slack_users/dt={today}/part-0.parquet", compression="zstd")

    # team.accessLogs, cursor mode; newest first
    latest = {}
    cursor = ""
    while True:
        params = {"team_id": team_id, "limit": a.logs_page}
        if cursor:
            params["cursor"] = cursor
        page = call(s, api, "team.accessLogs", params)
        calls += 1
        for e in page["logins"]:
            key = (team_id, e["user_id"], e.get("ip"), e.get("user_agent"), e["date_first"])
            old = latest.get(key)
            if old is None or e["date_last"] > old["date_last"]:
                latest[key] = e
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or ""
        if not cursor:
            break
    by_day = collections.defaultdict(list)
    for e in latest.values():
        by_day[dt.datetime.fromtimestamp(e["date_last"], dt.timezone.utc).date().isoformat()].append(e)
    for day, entries in by_day.items():
        cols = {
            "team_id": [team_id] * len(entries),
            "user_id": [e["user_id"] for e in entries],
            "username": [e.get("username") for e in entries],
            "date_first": pa.array([e["date_first"] * 1_000_000 for e in entries], pa.timestamp("us", "UTC")),
            "date_last": pa.array([e["date_last"] * 1_000_000 for e in entries], pa.timestamp("us", "UTC")),
            "count": [e.get("count") for e in entries],
            "ip": [e.get("ip") for e in entries],
            "user_agent": [e.get("user_agent") for e in entries],
            "isp": [e.get("isp") for e in entries],
            "country": [e.get("country") for e in entries],
            "region": [e.get("region") for e in entries],
        }
        os.makedirs(f"{a.out}/slack_access_logs/dt={day}", exist_ok=True)
        pq.write_table(pa.table(cols), f"{a.out}/slack_access_logs/dt={day}/part-0.parquet", compression="zstd")
    print(json.dumps({
        "users": len(users["user_id"]),
        "access_logs": len(latest),
        "partitions": len(by_day) + 1,
        "calls": calls,
        "seconds": round(time.perf_counter() - t0, 3),
    }))


def call(s, api, method, params):
    r = s.get(f"{api}/{method}", params=params)
    r.raise_for_status()
    body = r.json()
    if not body.get("ok"):
        sys.exit(f"{method}: {body.get('error')}")
    return body


def raw(s, api, a):
    """Fetch every page of both methods; decode nothing but the next cursor."""
    calls = nbytes = 0
    team_id = call(s, api, "auth.test", {})["team_id"]
    for method, params in (("users.list", {"limit": a.users_page}),
                           ("team.accessLogs", {"team_id": team_id, "limit": a.logs_page})):
        cursor = ""
        while True:
            q = dict(params)
            if cursor:
                q["cursor"] = cursor
            body = s.get(f"{api}/{method}", params=q).content
            calls += 1
            nbytes += len(body)
            i = body.rfind(b'"next_cursor":"')
            if i < 0:
                break
            j = body.index(b'"', i + 15)
            cursor = body[i + 15:j].decode()
            if not cursor:
                break
    return {"calls": calls, "bytes": nbytes}


if __name__ == "__main__":
    main()
