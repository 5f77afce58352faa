"""What SASL_SSL costs the ingest: the same drain on the plaintext and on the secured stack.

Usage (`conveyor bench --security` runs this; no stack may be running, it starts its own):
    .venv/bin/python benchmarks/security.py [--events 300000] [--out benchmarks/results/<time>]

One after the other (never together on this machine), each in a fresh $CONVEYOR_HOME: start
the embedded stack (plaintext, then `--secure`), `conveyor topics apply` a one-stream catalog
(`clicks`, 4 partitions; on the secured stack its ACLs), produce the same seeded events as the
`producer` principal, then time `conveyor ingest clicks --available-now` as a user runs it (a
process: Spark's start included) and stop the stack. Same commit, same events, same command:
the only difference is the security of the stack. Prints a table and writes results.json;
nothing is asserted but the correctness gate (every event landed: silver + quarantine).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from bench_cli import run_conveyor

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SEED = 11


def _catalog(folder: Path) -> Path:
    data = yaml.safe_load((ROOT / "conveyor.yaml").read_text())
    clicks = data["streams"]["clicks"]
    clicks["topic"]["access"] = {"producers": ["producer"]}
    data["streams"] = {"clicks": clicks}
    path = folder / "conveyor.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def one_stack(secure: bool, events: int, work: Path) -> dict[str, Any]:
    """Start a stack, land `events` clicks with the ingest command, stop the stack."""
    home = work / ("secured" if secure else "plaintext")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")},
        "CONVEYOR_HOME": str(home),
        "CONVEYOR_CATALOG": str(_catalog(work)),
    }
    run_conveyor(env, "stack", "up", "--fresh", "--secure" if secure else "--plaintext")
    try:
        status = json.loads(run_conveyor(env, "stack", "status", "--json"))
        run_conveyor(env, "topics", "apply")
        run_conveyor(env, "produce", "clicks", "--count", str(events), "--seed", str(SEED))
        began = time.monotonic()
        totals = json.loads(
            run_conveyor(env, "ingest", "clicks", "--available-now", "--json").splitlines()[-1]
        )
        seconds = time.monotonic() - began
    finally:
        run_conveyor(env, "stack", "down")
    landed = totals["silver_rows"] + totals["quarantined"] + totals["duplicates_dropped"]
    return {
        "stack": "secured" if secure else "plaintext",
        "kafka": status.get("kafka_security_protocol", "PLAINTEXT"),
        "events": events,
        "rows_read": totals["rows_read"],
        "batches": totals["batches"],
        "drain_s": round(seconds, 1),
        "events_per_s": round(totals["rows_read"] / seconds),
        "correct": totals["rows_read"] == events and landed == events,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or HERE / "results" / datetime.now(UTC).strftime("security-%Y%m%dT%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-security-") as work:
        rows = [one_stack(secure, args.events, Path(work)) for secure in (False, True)]
    plain, secured = rows
    result = {
        "commit": commit,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": rows,
        "secured_vs_plaintext": round(secured["events_per_s"] / plain["events_per_s"], 3),
    }
    (out / "results.json").write_text(json.dumps(result, indent=2))
    print(f"ingest drain, plaintext vs secured stack (commit {commit}, {args.events} events)")
    print("| stack | Kafka | batches | drain (s) | events/s | correct |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['stack']} | {row['kafka']} | {row['batches']} | {row['drain_s']} "
            f"| {row['events_per_s']} | {row['correct']} |"
        )
    print(f"secured / plaintext throughput: {result['secured_vs_plaintext']}")
    print(f"written to {out}")
    return 0 if all(row["correct"] for row in rows) else 2


if __name__ == "__main__":
    raise SystemExit(main())
