#!/usr/bin/env python3
"""Check that a report view read over the wire (`psql --csv`) holds exactly the rows of the same
report from `lastseen report R --format csv`: same header, same multiset of rows.

The two sides spell some values differently and that is not a difference in the answer:
Postgres text format writes booleans `t`/`f` and timestamps `2026-06-30 09:04:50.000000+00`,
lastseen's CSV writes `true`/`false` and RFC 3339 (`2026-06-30T09:04:50Z`). Both are brought to
one spelling before comparing; everything else must match byte for byte.

    same_rows.py VIEW.csv CLI.csv       exit 0 and "N rows equal", or exit 1 with the first diffs
"""
import csv
import sys
from collections import Counter
from datetime import datetime, timezone


def norm(cell: str) -> str:
    if cell in ("t", "true"):
        return "true"
    if cell in ("f", "false"):
        return "false"
    if len(cell) >= 19 and cell[4] == "-" and cell[10] in "T ":
        text = cell.replace("Z", "+00:00")
        if text.endswith("+00"):
            text += ":00"
        try:
            ts = datetime.fromisoformat(text)
        except ValueError:
            return cell
        if ts.tzinfo is not None:
            ts = ts.astimezone(timezone.utc)
        return ts.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return cell


def rows(path: str):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        return header, Counter(tuple(norm(c) for c in r) for r in reader)


def main() -> int:
    view_header, view = rows(sys.argv[1])
    cli_header, cli = rows(sys.argv[2])
    if view_header != cli_header:
        print(f"different columns:\n  view: {view_header}\n  cli:  {cli_header}")
        return 1
    if view != cli:
        only_view = list((view - cli).elements())[:3]
        only_cli = list((cli - view).elements())[:3]
        print(f"different rows ({sum(view.values())} served, {sum(cli.values())} from the CLI)")
        print(f"  only served: {only_view}\n  only CLI:    {only_cli}")
        return 1
    print(f"{sum(view.values())} rows equal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
