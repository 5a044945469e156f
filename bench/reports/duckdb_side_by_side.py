"""Run lastseen's report SQL with DuckDB over the same lake Parquet, time it, and check it
agrees with lastseen's own output.

Usage:
    duckdb_side_by_side.py LAKE_DIR REPORT [--runs N] [--days N] [--as-of D] [--threads N]
                           [--check LASTSEEN.csv] [--sql FILE] [--oracle] [--show-sql]

- Every table folder of the lake becomes a view named after the table:
  read_parquet('<lake>/<table>/dt=*/*.parquet', hive_partitioning = true).
- The SQL is query/reports/REPORT.sql as lastseen runs it, with the parameters bound by
  substitution ($as_of, $cutoff = as_of - days, $days; no app/workspace/department filter, guests
  in, bots out: the defaults of `lastseen report`), and the few dialect differences rewritten
  (DuckDB casts neither DATE to INT nor INT to DATE: `d - DATE '1970-01-01'` and
  `DATE '1970-01-01' + n` instead). Every rewrite is listed with --show-sql.
- The report SQL reads the run's daily rollups (account_report); --oracle runs the report's
  oracle instead, query/reports/oracle/REPORT.sql: the same report over the raw tables, as
  lastseen runs it on a day without rollups (and as the reports were before rollups existed).
- Each run opens a fresh in-memory connection (as each `lastseen report` opens a fresh
  session) and materialises the result (CREATE TEMP TABLE … AS), the counterpart of DataFusion's
  collect(); printing rows is not timed.
- --check compares the result row by row, every column, in order, with the CSV that
  `lastseen report REPORT --format csv` wrote for the same lake and parameters.
"""
import argparse
import csv
import datetime as dt
import glob
import json
import os
import re
import statistics
import sys
import time

import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))
REPORTS = os.path.join(HERE, "..", "..", "query", "reports")
EPOCH = "DATE '1970-01-01'"

# (pattern, replacement): DataFusion's day-number casts in DuckDB's spelling.
REWRITES = [
    # CAST(CAST(x AS DATE) AS INT) -> day number of the date
    (r"CAST\(CAST\(([$\w.]+) AS DATE\) AS INT\)", rf"(CAST(\1 AS DATE) - {EPOCH})"),
    # CAST(dt AS INT), CAST(d.dt AS INT), CAST(i.termination_date AS INT) -> day number of a DATE column
    (r"CAST\(((?:\w+\.)?(?:dt|termination_date)) AS INT\)", rf"(\1 - {EPOCH})"),
    # CAST(<day number> - 29 AS DATE) -> back to a date
    (r"CAST\((\(CAST\([$\w.]+ AS DATE\) - DATE '1970-01-01'\) - \d+) AS DATE\)", rf"({EPOCH} + CAST(\1 AS INTEGER))"),
    # CAST(<day number> + 1 AS DATE) -> the date of that day number (usage's guard)
    (r"CAST\((\(CAST\([$\w.]+ AS DATE\) - DATE '1970-01-01'\) \+ \d+) AS DATE\)", rf"({EPOCH} + CAST(\1 AS INTEGER))"),
    # `at` (deprovision_actions) is a keyword in DuckDB (AT TIME ZONE): quote the column
    (r"CAST\(at AS DATE\)", 'CAST("at" AS DATE)'),
    (r"ORDER BY at DESC", 'ORDER BY "at" DESC'),
    # CAST(dt AS INT) -> day number of a partition date (the rollup SQL of usage)
    (r"CAST\(dt AS INT\)", rf"(dt - {EPOCH})"),
    # CAST(dy.n AS DATE) -> the date of a day number
    (r"CAST\((\w+\.n) AS DATE\)", rf"({EPOCH} + CAST(\1 AS INTEGER))"),
]


def duckdb_sql(report, as_of, days, path=None):
    with open(path or os.path.join(REPORTS, f"{report}.sql")) as f:
        sql = f.read()
    # The report query is the file up to its first `-- @chart` section (the charts read the
    # report's rows as a table `report`, which only lastseen's registry provides).
    sql = re.split(r"^\s*--\s*@chart\b", sql, maxsplit=1, flags=re.M)[0].rstrip().rstrip(";")
    applied = []
    for pattern, repl in REWRITES:
        sql, n = re.subn(pattern, repl, sql)
        if n:
            applied.append((pattern, n))
    if re.search(r"AS INT\)", sql):
        sys.exit(f"{report}.sql: a CAST(… AS INT) is left that the rewrites do not cover")
    cutoff = as_of - dt.timedelta(days=days)
    params = {
        "as_of": f"DATE '{as_of}'",
        "cutoff": f"DATE '{cutoff}'",
        "days": str(days),
        "workspace": "CAST(NULL AS VARCHAR)",
        "app": "CAST(NULL AS VARCHAR)",
        "department": "CAST(NULL AS VARCHAR)",
        "exclude_guests": "false",
        "include_bots": "false",
    }
    # Longest names first so $days never eats part of another name.
    for name in sorted(params, key=len, reverse=True):
        sql = sql.replace(f"${name}", params[name])
    if "$" in re.sub(r"--.*", "", sql):
        sys.exit(f"{report}.sql: an unbound $parameter is left")
    return sql, applied


def tables(lake):
    return sorted(
        d for d in os.listdir(lake)
        if not d.startswith("_") and glob.glob(os.path.join(lake, d, "dt=*", "*.parquet"))
    )


# Tables whose files differ in columns from day to day (see connect).
EVOLVED = {"account_report", "usage_daily"}


def connect(lake, threads):
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET TimeZone = 'UTC'")  # lastseen's timestamps are UTC; casts to DATE follow this
    for t in tables(lake):
        # The rollups gained columns (account_report v2: `risk`, `days_since_last_seen`); days
        # derived before keep their old files, so DuckDB must take each file's columns by name
        # (lastseen reads them through the table's schema, NULL where a file lacks a column).
        by_name = ", union_by_name = true" if t in EVOLVED else ""
        con.execute(
            f"CREATE VIEW {t} AS SELECT * FROM "
            f"read_parquet('{lake}/{t}/dt=*/*.parquet', hive_partitioning = true{by_name})"
        )
    return con


def newest_snapshot(lake):
    days = sorted(p.split("dt=")[1] for p in glob.glob(os.path.join(lake, "last_seen", "dt=*")))
    if not days:
        sys.exit(f"{lake} has no last_seen snapshot")
    return dt.date.fromisoformat(days[-1])


def norm(v):
    """A DuckDB value as lastseen's CSV writes it."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dt.date):
        return v.isoformat()
    return str(v)


def norm_csv(s):
    """A CSV cell; timestamps as epoch microseconds (DuckDB's side selects epoch_us())."""
    if re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:?\d\d)", s):
        t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
        return str((t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(microseconds=1))
    return s


def check(con, path):
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    header, ours = rows[0], rows[1:]
    described = con.execute("DESCRIBE result").fetchall()
    cols = [r[0] for r in described]
    if cols != header:
        sys.exit(f"columns differ:\n  lastseen {header}\n  duckdb   {cols}")
    select = ", ".join(f"epoch_us({c})" if ty.startswith("TIMESTAMP") else c for c, ty, *_ in described)
    theirs = con.execute(f"SELECT {select} FROM result").fetchall()
    if len(theirs) != len(ours):
        sys.exit(f"row counts differ: lastseen {len(ours)}, duckdb {len(theirs)}")
    for i, (a, b) in enumerate(zip(ours, theirs)):
        a = [norm_csv(x) for x in a]
        b = [norm(x) for x in b]
        if a != b:
            diff = [(c, x, y) for c, x, y in zip(cols, a, b) if x != y]
            sys.exit(f"row {i + 1} differs (column, lastseen, duckdb): {diff}")
    return len(ours)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("lake")
    ap.add_argument("report")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--as-of", type=dt.date.fromisoformat)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--check", metavar="LASTSEEN_CSV")
    ap.add_argument("--sql", metavar="FILE", help="run this SQL file instead of query/reports/REPORT.sql")
    ap.add_argument("--oracle", action="store_true",
                    help="run query/reports/oracle/REPORT.sql (the report over the raw tables)")
    ap.add_argument("--show-sql", action="store_true")
    a = ap.parse_args()
    lake = os.path.abspath(a.lake)
    as_of = a.as_of or newest_snapshot(lake)
    path = a.sql or (os.path.join(REPORTS, "oracle", f"{a.report}.sql") if a.oracle else None)
    sql, applied = duckdb_sql(a.report, as_of, a.days, path)
    if a.show_sql:
        for pattern, n in applied:
            print(f"-- rewrite ×{n}: {pattern}")
        print(sql)
        return
    times = []
    for run in range(1, a.runs + 1):
        t = time.perf_counter()
        con = connect(lake, a.threads)
        opened = time.perf_counter() - t
        con.execute(f"CREATE TEMP TABLE result AS {sql}")
        secs = time.perf_counter() - t
        n = con.execute("SELECT count(*) FROM result").fetchone()[0]
        print(f"duckdb {a.report} run {run}: {n} rows as of {as_of} in {secs:.3f}s (views {opened:.3f}s)")
        times.append(secs)
        if run < a.runs:
            con.close()
    if a.check:
        rows = check(con, a.check)
        print(f"duckdb {a.report}: all {rows} rows equal lastseen's {a.check}")
    times.sort()
    print(json.dumps({
        "engine": f"duckdb {duckdb.__version__}", "report": a.report, "days": a.days, "runs": a.runs,
        "min_s": round(times[0], 3), "median_s": round(statistics.median_low(times), 3),
        "max_s": round(times[-1], 3),
    }))


if __name__ == "__main__":
    main()
