"""Compact or vacuum catalog tables: `conveyor compact` / `conveyor vacuum` under spark-submit,
with the same arguments.

Usage:
    spark-submit $(conveyor spark-args) jobs/maintain.py compact (TABLE | --all)
        [--zorder] [--include-open] [--force] [--json] [--catalog conveyor.yaml]
    spark-submit $(conveyor spark-args) jobs/maintain.py vacuum (TABLE | --all)
        [--dry-run] [--retain 10d] [--json] [--catalog conveyor.yaml]

Exit codes: 0 done (also when nothing was due, or another run held a table's lock), 1 failed or
refused (e.g. a retention below the safe one), 2 a wrong argument.
"""

from __future__ import annotations

import sys

OPERATIONS = ("compact", "vacuum")

if __name__ == "__main__":
    from conveyor.cli import run_job

    if len(sys.argv) < 2 or sys.argv[1] not in OPERATIONS:
        print(
            f"usage: {sys.argv[0]} {{{','.join(OPERATIONS)}}} (TABLE | --all) ...", file=sys.stderr
        )
        raise SystemExit(2)
    run_job([sys.argv[1]], sys.argv[2:])
