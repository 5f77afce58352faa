"""Replay quarantined records or rebuild silver from bronze: `conveyor replay` / `conveyor
rebuild` under spark-submit, with the same arguments.

Usage:
    spark-submit $(conveyor spark-args) jobs/rework.py replay STREAM [--reason CODE]...
        [--since T] [--until T] [--dry-run] [--json] [--catalog conveyor.yaml]
    spark-submit $(conveyor spark-args) jobs/rework.py rebuild STREAM
        (--from DATE --to DATE | --all) [--dry-run] [--json] [--catalog conveyor.yaml]

Exit codes: 0 done, 1 failed, 2 a wrong argument (nothing written).
"""

from __future__ import annotations

import sys

OPERATIONS = ("replay", "rebuild")

if __name__ == "__main__":
    from conveyor.cli import run_job

    if len(sys.argv) < 2 or sys.argv[1] not in OPERATIONS:
        print(f"usage: {sys.argv[0]} {{{','.join(OPERATIONS)}}} STREAM ...", file=sys.stderr)
        raise SystemExit(2)
    run_job([sys.argv[1]], sys.argv[2:])
