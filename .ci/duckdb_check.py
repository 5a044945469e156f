"""Read the lake with DuckDB (an independent engine) and check types and row counts.

Usage: duckdb_check.py LAKE_DIR. Exits non-zero with a message when something is off.
"""
import sys

import duckdb

lake = sys.argv[1]
con = duckdb.connect()

def read(table):
    return f"read_parquet('{lake}/{table}/dt=*/*.parquet', hive_partitioning = true)"

def column_types(table):
    return {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {read(table)}").fetchall()}

types = column_types("slack_access_logs")
expect = {"date_first": "TIMESTAMP WITH TIME ZONE", "date_last": "TIMESTAMP WITH TIME ZONE",
          "count": "BIGINT", "user_id": "VARCHAR", "dt": "DATE"}
for col, ty in expect.items():
    if types.get(col) != ty:
        sys.exit(f"slack_access_logs.{col}: DuckDB sees {types.get(col)}, expected {ty}")

users = column_types("slack_users")
for col, ty in {"deleted": "BOOLEAN", "updated": "TIMESTAMP WITH TIME ZONE", "dt": "DATE"}.items():
    if users.get(col) != ty:
        sys.exit(f"slack_users.{col}: DuckDB sees {users.get(col)}, expected {ty}")

# Every partition is whole: exactly one row per account per day, no duplicates from re-runs.
dups = con.execute(f"SELECT count(*) FROM (SELECT dt, user_id FROM {read('slack_users')} GROUP BY ALL HAVING count(*) > 1)").fetchone()[0]
if dups:
    sys.exit(f"slack_users has {dups} duplicated (dt, user_id) pairs")
days = con.execute(f"SELECT count(DISTINCT dt), count(*) FROM {read('slack_users')}").fetchone()
last = con.execute(f"SELECT CAST(max(date_last) AS VARCHAR) FROM {read('slack_access_logs')}").fetchone()[0]
print(f"duckdb {duckdb.__version__}: slack_users {days[1]} rows over {days[0]} days; "
      f"access logs up to {last}; types OK")
