"""Read lastseen's Delta logs with independent engines and compare with lastseen's own rows.

Used by tests/it/delta.rs and tests/it/s3.rs (run with the Python in LASTSEEN_TEST_PYTHON).

  delta_check.py compare JOBS.json  -- each job: {"table_url", "expected" (a Parquet file that
      `lastseen sql --format parquet` wrote), "delta_version" (null: the newest), "engines"
      (["duckdb", "deltalake"]), "storage_options" (for deltalake)}. Every engine must return
      exactly the expected rows (as a multiset), `dt` as a DATE and timestamps as timestamps.
  delta_check.py history TABLE_URL [STORAGE_OPTIONS_JSON]  -- prints one JSON line per Delta
      version: {"delta_version", "lake_version", "operation"}.

Prints one JSON line per job; exits non-zero with a message naming the table on a mismatch.
"""
import glob
import json
import os
import sys

import duckdb


def delta_extension():
    """The Delta extension from the duckdb-extension-delta wheel (no download from DuckDB's
    extension server)."""
    import duckdb_extension_delta

    base = os.path.dirname(duckdb_extension_delta.__file__)
    found = glob.glob(os.path.join(base, "**", "delta.duckdb_extension"), recursive=True)
    if not found:
        sys.exit(f"no delta.duckdb_extension under {base}")
    return found[0]


def connect(need_delta):
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    if need_delta:
        con.execute(f"LOAD '{delta_extension()}'")
    return con


def multiset_diff(con, a, b, cols):
    sel = ", ".join(f'"{c}"' for c in cols)
    missing = con.execute(f"SELECT count(*) FROM (SELECT {sel} FROM {a} EXCEPT ALL SELECT {sel} FROM {b})").fetchone()[0]
    extra = con.execute(f"SELECT count(*) FROM (SELECT {sel} FROM {b} EXCEPT ALL SELECT {sel} FROM {a})").fetchone()[0]
    return missing, extra


def compare(jobs_file):
    jobs = json.load(open(jobs_file))
    need_delta = any("duckdb" in j["engines"] for j in jobs)
    con = connect(need_delta)
    failures = []
    for j in jobs:
        table_url, expected, version = j["table_url"], j["expected"], j.get("delta_version")
        name = table_url.rstrip("/").split("/")[-1]
        con.execute(f"CREATE OR REPLACE VIEW expected AS SELECT * FROM read_parquet('{expected}')")
        exp_types = {r[0]: r[1] for r in con.execute("DESCRIBE expected").fetchall()}
        cols = list(exp_types)
        n_expected = con.execute("SELECT count(*) FROM expected").fetchone()[0]
        result = {"table": name, "delta_version": version, "rows": n_expected}
        for engine in j["engines"]:
            if engine == "duckdb":
                path = table_url[len("file://"):] if table_url.startswith("file://") else table_url
                v = f", version => {int(version)}" if version is not None else ""
                con.execute(f"CREATE OR REPLACE VIEW got AS SELECT * FROM delta_scan('{path}'{v})")
            else:
                from deltalake import DeltaTable

                dt = DeltaTable(table_url, version=version, storage_options=j.get("storage_options") or None)
                arrow = dt.to_pyarrow_table()
                schema = {f.name: str(f.type) for f in arrow.schema}
                if schema.get("dt") != "date32[day]":
                    failures.append(f"{name} (deltalake): dt is {schema.get('dt')}, not a date")
                for c, t in exp_types.items():
                    if t.startswith("TIMESTAMP") and not schema.get(c, "").startswith("timestamp"):
                        failures.append(f"{name}.{c} (deltalake): {schema.get(c)}, not a timestamp")
                con.register("got_arrow", arrow)
                con.execute("CREATE OR REPLACE VIEW got AS SELECT * FROM got_arrow")
            got_types = {r[0]: r[1] for r in con.execute("DESCRIBE got").fetchall()}
            if got_types.get("dt") != "DATE":
                failures.append(f"{name} ({engine}): dt comes back as {got_types.get('dt')}, not DATE")
            for c, t in exp_types.items():
                if c not in got_types:
                    failures.append(f"{name} ({engine}): column {c} missing")
                elif t.startswith("TIMESTAMP") and not got_types[c].startswith("TIMESTAMP"):
                    failures.append(f"{name}.{c} ({engine}): {got_types[c]}, not a timestamp")
            if any(c not in got_types for c in cols):
                continue
            n_got = con.execute("SELECT count(*) FROM got").fetchone()[0]
            missing, extra = multiset_diff(con, "expected", "got", cols)
            result[engine] = {"rows": n_got, "missing": missing, "extra": extra}
            if n_got != n_expected or missing or extra:
                failures.append(
                    f"{name} ({engine}, delta version {version}): {n_got} rows, lastseen has {n_expected}; "
                    f"{missing} of lastseen's rows missing, {extra} extra"
                )
        print(json.dumps(result), flush=True)
    if failures:
        sys.exit("\n".join(failures))


def history(table_url, storage_options):
    from deltalake import DeltaTable

    dt = DeltaTable(table_url, storage_options=storage_options or None)
    for h in sorted(dt.history(), key=lambda h: h["version"]):
        meta = h.get("lastseen") or {}
        if isinstance(meta, str):
            meta = json.loads(meta)
        print(json.dumps({"delta_version": h["version"], "lake_version": meta.get("lakeVersion"),
                          "operation": h.get("operation")}))


if __name__ == "__main__":
    if sys.argv[1] == "compare":
        compare(sys.argv[2])
    elif sys.argv[1] == "history":
        history(sys.argv[2], json.loads(sys.argv[3]) if len(sys.argv) > 3 else None)
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
