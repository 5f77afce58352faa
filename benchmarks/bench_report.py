"""Turn a benchmark result (results.json) into report.md and chart.png.

Every figure is a median over the repetitions, with its spread (min-max); ratios are to
Conveyor's median (above 1 means more than Conveyor: better for throughput, worse for latency,
files, memory and query time).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

CONVEYOR = "conveyor"
BASELINE_AT_OUR_TRIGGER = "docs-baseline@conveyor-trigger"


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def _spread(runs: list[dict[str, Any]], key: str) -> str:
    values = [r[key] for r in runs if r.get(key) is not None]
    if len(values) < 2:
        return ""
    return f" ({min(values):g}-{max(values):g})"


def _ratio(value: float | None, ours: float | None) -> str:
    if value is None or not ours:
        return "-"
    return f"{value / ours:.2f}x"


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def drain_table(result: dict[str, Any]) -> list[str]:
    drain = result["drain"]
    ours = {k: _median(drain[CONVEYOR], k) for k in ("events_per_s", "events_per_cpu_s")}
    lines = [
        "| contender | events/s | vs conveyor | events per CPU-s | vs conveyor | peak memory MiB "
        "| files per partition | rows | duplicates | correct |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, runs in drain.items():
        eps, cpu = _median(runs, "events_per_s"), _median(runs, "events_per_cpu_s")
        lines.append(
            f"| {name} | {_fmt(eps)}{_spread(runs, 'events_per_s')} | "
            f"{_ratio(eps, ours['events_per_s'])} | {_fmt(cpu)}{_spread(runs, 'events_per_cpu_s')} "
            f"| {_ratio(cpu, ours['events_per_cpu_s'])} | {_fmt(_median(runs, 'peak_rss_mib'))} | "
            f"{_fmt(_median(runs, 'files_per_partition'), 1) if 'files' in runs[0] else '-'} | "
            f"{runs[-1]['rows']} | {runs[-1]['duplicates']} | "
            f"{'yes' if all(r['correct'] for r in runs) else '**NO**'} |"
        )
    return lines


def latency_table(result: dict[str, Any]) -> list[str]:
    lines = [
        "| contender | rate (events/s) | p50 s | p95 s | p99 s | p99 vs conveyor | measured |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, runs in result["latency"].items():
        name, rate = key.rsplit("@", 1)
        ours = result["latency"].get(f"{CONVEYOR}@{rate}", [])
        p99 = _median(runs, "p99_s")
        lines.append(
            f"| {name} | {rate} | {_fmt(_median(runs, 'p50_s'), 2)} | "
            f"{_fmt(_median(runs, 'p95_s'), 2)} | {_fmt(p99, 2)}{_spread(runs, 'p99_s')} | "
            f"{_ratio(p99, _median(ours, 'p99_s'))} | "
            f"{runs[-1]['measured']}/{runs[-1]['events']}"
            f"{' (timed out)' if any(r.get('timed_out') for r in runs) else ''} |"
        )
    return lines


def query_table(result: dict[str, Any]) -> list[str]:
    lines = [
        "| table of | files | query s | after compaction: files | query s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, q in result["query"].items():
        lines.append(
            f"| {name} | {q['files_before']} | {q['query_s_before']} | {q['files_after']} | "
            f"{q['query_s_after']} |"
        )
    return lines


def targets(result: dict[str, Any]) -> list[str]:
    """Conveyor against the docs baseline at the same trigger, as the issue states them."""
    drain = result["drain"]
    if BASELINE_AT_OUR_TRIGGER not in drain:
        return []
    ours, theirs = drain[CONVEYOR], drain[BASELINE_AT_OUR_TRIGGER]
    throughput = (_median(ours, "events_per_s") or 0) / (_median(theirs, "events_per_s") or 1)
    files = (_median(ours, "files_per_partition") or 0) / (
        _median(theirs, "files_per_partition") or 1
    )
    lines = [
        f"- throughput vs docs-baseline at Conveyor's trigger: {throughput:.2f}x (target >= 1.2x)",
        f"- files per partition vs the same: {files:.2f}x (target <= 0.3x)",
    ]
    for rate in result.get("latency_rates", []):
        mine = _median(result["latency"].get(f"{CONVEYOR}@{rate}", []), "p99_s")
        base = _median(result["latency"].get(f"{BASELINE_AT_OUR_TRIGGER}@{rate}", []), "p99_s")
        if mine is not None and base:
            lines.append(
                f"- p99 latency at {rate}/s vs the same: {mine / base:.2f}x (target <= 1.1x)"
            )
    return lines


def write_report(result: dict[str, Any], out: Path) -> None:
    """report.md and chart.png in `out`."""
    m = result["machine"]
    a = result["args"]
    text = [
        "# Conveyor ingest benchmark",
        "",
        f"{result['when']}: {a['events']:,} `clicks` events, {a['repeat']} repetition(s) in "
        f"rotating order{' (quick)' if a['quick'] else ''}.",
        "",
        f"Machine: {m['cores']} cores, {m['memory_gib']} GiB, load {m['load_average_at_start']} "
        f"at start; Python {m['python']}, pyspark {m['pyspark']} ({m['spark_master']}), "
        f"delta-spark {m['delta-spark']}, deltalake {m['deltalake']}, kafka-python "
        f"{m['kafka-python']}, confluent-kafka {m['confluent-kafka']}.",
        "",
        "## Backlog drain",
        "",
        *drain_table(result),
        "",
        "Conveyor lands bronze, silver, quarantine and the ledger; the others one table. CPU "
        "counts every process of the contender (Python, JVM).",
        "",
        "## Latency (produce to visible in the table)",
        "",
        *latency_table(result),
        "",
        "## A query before and after compaction",
        "",
        *query_table(result),
        "",
        "## Targets",
        "",
        *targets(result),
        "",
    ]
    (out / "report.md").write_text("\n".join(text))
    chart(result, out / "chart.png")


def chart(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drain = result["drain"]
    names = list(drain)
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    for ax, key, title in (
        (axes[0], "events_per_s", "drain throughput (events/s)"),
        (axes[1], "events_per_cpu_s", "events per CPU-second"),
    ):
        medians = [_median(drain[n], key) or 0 for n in names]
        lows = [m - min(r[key] or 0 for r in drain[n]) for m, n in zip(medians, names, strict=True)]
        highs = [
            max(r[key] or 0 for r in drain[n]) - m for m, n in zip(medians, names, strict=True)
        ]
        ax.barh(names, medians, xerr=[lows, highs], color="#2f6fde")
        ax.set_title(title)
        ax.invert_yaxis()
    ax = axes[2]
    rates = result.get("latency_rates", [])
    for name in dict.fromkeys(k.rsplit("@", 1)[0] for k in result["latency"]):
        p99 = [_median(result["latency"].get(f"{name}@{r}", []), "p99_s") for r in rates]
        ax.plot(rates, p99, marker="o", label=name)
    ax.set_title("p99 latency (s) by rate (events/s)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    write_report(json.loads((folder / "results.json").read_text()), folder)
    print((folder / "report.md").read_text())
