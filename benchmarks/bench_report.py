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
MEDALLION = "docs-medallion"
BASELINE = "docs-baseline"
BASELINE_AT_OUR_TRIGGER = "docs-baseline@conveyor-trigger"
STEPS = ("parse", "dedup", "bronze", "silver", "quarantine", "monitor", "lock")


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
    ours = {k: _median(drain.get(CONVEYOR, []), k) for k in ("events_per_s", "events_per_cpu_s")}
    lines = [
        "| contender | events/s | vs conveyor | events per CPU-s (own) | vs conveyor "
        "| events per CPU-s (machine) | peak memory MiB "
        "| files per partition | rows | duplicates | correct |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, runs in drain.items():
        eps, cpu = _median(runs, "events_per_s"), _median(runs, "events_per_cpu_s")
        lines.append(
            f"| {name} | {_fmt(eps)}{_spread(runs, 'events_per_s')} | "
            f"{_ratio(eps, ours['events_per_s'])} | {_fmt(cpu)}{_spread(runs, 'events_per_cpu_s')} "
            f"| {_ratio(cpu, ours['events_per_cpu_s'])} | "
            f"{_fmt(_median(runs, 'events_per_machine_cpu_s'))} | "
            f"{_fmt(_median(runs, 'peak_rss_mib'))} | "
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
            f"{' (timed out)' if any(r.get('timed_out') for r in runs) else ''}"
            f"{' (the job exited)' if any(r.get('exited') is not None for r in runs) else ''} |"
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


def _eps(result: dict[str, Any], name: str, key: str = "events_per_s") -> float | None:
    return _median(result["drain"].get(name, []), key)


def _p(result: dict[str, Any], name: str, rate: int, key: str) -> float | None:
    return _median(result["latency"].get(f"{name}@{rate}", []), key)


def _check(label: str, value: float | None, target: str, met: bool | None) -> str:
    shown = "-" if value is None else f"{value:.2f}"
    verdict = "not measured" if met is None else ("met" if met else "**not met**")
    return f"| {label} | {shown} | {target} | {verdict} |"


def _ratio_check(label: str, mine: float | None, theirs: float | None, floor: float) -> str:
    value = mine / theirs if mine is not None and theirs else None
    return _check(label, value, f">= {floor}x", None if value is None else value >= floor)


def targets(result: dict[str, Any]) -> list[str]:
    """Each of issue 35's targets, the figure this run measured for it, and whether it is met
    (the one-table script is reported above, with no target)."""
    lines = ["| target | measured | wanted | verdict |", "|---|---:|---:|---|"]
    ours = _eps(result, CONVEYOR)
    lines.append(_ratio_check(f"drain events/s vs {MEDALLION}", ours, _eps(result, MEDALLION), 1.0))
    key = "events_per_machine_cpu_s"
    lines.append(
        _ratio_check(
            f"events per CPU-s (machine) vs {MEDALLION}",
            _eps(result, CONVEYOR, key),
            _eps(result, MEDALLION, key),
            1.0,
        )
    )
    lone = result.get("single_events")
    if lone:
        median, p99 = lone["median_s"], lone["p99_s"]
        lines.append(
            _check("lone event, median produce to visible (s)", median, "<= 3 s", median <= 3)
        )
        lines.append(_check("lone event, p99 produce to visible (s)", p99, "<= 6 s", p99 <= 6))
        before = result["args"].get("idle_before_cores")
        idle = lone["idle_cpu_cores"]
        if before is None:
            lines.append(_check("idle running ingest (cores)", idle, "<= before + 0.05", None))
        else:
            more = idle - before
            lines.append(
                _check(
                    "idle running ingest, more than before (cores)", more, "<= 0.05", more <= 0.05
                )
            )
    for rate in result.get("latency_rates", []):
        for q in ("p50_s", "p99_s"):
            mine, med = _p(result, CONVEYOR, rate, q), _p(result, MEDALLION, rate, q)
            if mine is not None and med:
                label = f"live {q[:3]} at {rate}/s vs {MEDALLION}"
                lines.append(_check(label, mine / med, "<= 1.0x", mine <= med))
    steady = result.get("steady_state")
    if steady and steady["empty"]:
        ratio = steady["steady"]["events_per_s"] / steady["empty"]["events_per_s"]
        lines.append(
            _check("steady state vs empty tables (events/s)", ratio, ">= 0.85x", ratio >= 0.85)
        )
    scaling = result.get("scaling")
    base_cpu = _eps(result, CONVEYOR, "events_per_cpu_s")
    if scaling and scaling.get("events_per_cpu_s") and base_cpu:
        cost = base_cpu / scaling["events_per_cpu_s"]  # CPU per event, 16 partitions vs 4
        label = (
            f"cost per event, {scaling['partitions']} partitions vs {result['args']['partitions']}"
        )
        lines.append(_check(label, cost, "<= 1.2x", cost <= 1.2))
    med_mem = _eps(result, MEDALLION, "peak_rss_mib")
    mem = _eps(result, CONVEYOR, "peak_rss_mib")
    if mem is not None and med_mem:
        lines.append(
            _check(f"peak memory vs {MEDALLION}", mem / med_mem, "<= 1.2x", mem / med_mem <= 1.2)
        )
    return lines


def lone_lines(result: dict[str, Any]) -> list[str]:
    lone = result.get("single_events")
    if not lone:
        return []
    return [
        f"{lone['events']} lone events into a running `conveyor ingest` with its default settings "
        f"(trigger {result['args'].get('trigger_interval', '?')}), each produced 3-8 s (at "
        "random) after the last was visible, timed from its Kafka CreateTime to the poll of silver "
        f"(every 0.25 s) that first saw it: median {lone['median_s']} s, p99 {lone['p99_s']} s, "
        f"max {lone['max_s']} s ({lone['measured']}/{lone['events']} measured). The same job idle "
        f"(warm tables, nothing to read) for {lone['idle_s']:.0f} s used "
        f"{lone['idle_cpu_cores'] * 100:.1f}% of a core.",
    ]


def scaling_lines(result: dict[str, Any]) -> list[str]:
    scaling = result.get("scaling")
    runs = result["drain"].get(CONVEYOR, [])
    if not scaling or not runs:
        return []
    eps, cpu = _median(runs, "events_per_s"), _median(runs, "events_per_cpu_s")
    return [
        "| partitions | events/s | events per CPU-s (own) | peak MiB | rows | correct |",
        "|---:|---:|---:|---:|---:|---|",
        f"| {result['args']['partitions']} | {_fmt(eps)} | {_fmt(cpu)} | "
        f"{_fmt(_median(runs, 'peak_rss_mib'))} | {runs[-1]['rows']} | "
        f"{'yes' if all(r['correct'] for r in runs) else '**NO**'} |",
        f"| {scaling['partitions']} | {_fmt(scaling['events_per_s'])} | "
        f"{_fmt(scaling['events_per_cpu_s'])} | {_fmt(scaling['peak_rss_mib'])} | "
        f"{scaling['rows']} | {'yes' if scaling['correct'] else '**NO**'} |",
    ]


def breakdown(result: dict[str, Any]) -> list[str]:
    """The step times of Conveyor's median batch (by duration) in its drains."""
    batches = [b for run in result["drain"].get(CONVEYOR, []) for b in run.get("batches", [])]
    if not batches:
        return []
    batches.sort(key=lambda b: b["ms"])
    median = batches[len(batches) // 2]
    steps = " | ".join(f"{step} ms" for step in STEPS)
    cells = " | ".join(_fmt(median.get(f"{step}_ms")) for step in STEPS)
    return [
        f"Median of {len(batches)} batches (by duration), from the ledger's `<step>_ms` columns "
        "(a batch of at most 20,000 records appends bronze, silver and quarantine at once: "
        "their sum can exceed the batch).",
        "",
        f"| rows | batch ms | {steps} |",
        "|---:|---:|" + "---:|" * len(STEPS),
        f"| {median['rows']:,} | {median['ms']:,} | {cells} |",
    ]


def layers_table(result: dict[str, Any]) -> list[str]:
    """Bytes per event in each of Conveyor's tables after its last drain (for capacity)."""
    runs = result["drain"].get(CONVEYOR, [])
    if not runs or "layers" not in runs[-1]:
        return []
    lines = ["| table | rows | files | bytes | bytes per event |", "|---|---:|---:|---:|---:|"]
    events = result["args"]["events"]
    for layer, f in runs[-1]["layers"].items():
        lines.append(
            f"| {layer} | {f['rows']:,} | {f['files']:,} | {f['bytes']:,} | "
            f"{f['bytes'] / events:.1f} |"
        )
    return lines


def steady_table(result: dict[str, Any]) -> list[str]:
    steady = result.get("steady_state")
    if not steady:
        return []
    lines = [
        f"The same backlog ({result['args']['events']:,} events at 500 events/s of event time) "
        f"drained by Conveyor into empty tables, then into a silver holding "
        f"{steady['history_rows']:,} rows of history (4 h at 500 events/s, written in bulk, "
        f"inside the window the dedup decision reads) of which {steady['planted_duplicates']:,} "
        "are earlier copies of the backlog's events.",
        "",
        "| silver before the drain | events/s | events per CPU-s | peak MiB | duplicates found | "
        "correct |",
        "|---|---:|---:|---:|---:|---|",
    ]
    runs = [(f"{steady['history_rows']:,} rows", steady["steady"], steady["duplicates_found"])]
    if steady["empty"]:  # not drained by --quick
        runs.insert(0, ("empty", steady["empty"], 0))
    for label, run, found in runs:
        lines.append(
            f"| {label} | {_fmt(run['events_per_s'])} | {_fmt(run['events_per_cpu_s'])} | "
            f"{_fmt(run['peak_rss_mib'])} | {found:,} | {'yes' if run['correct'] else '**NO**'} |"
        )
    return lines


def fixed_lines(result: dict[str, Any]) -> list[str]:
    fixed = result.get("fixed_cost")
    if not fixed:
        return []
    return [
        f"{fixed['rounds']} batches of {fixed['size']} records into warm tables, a live job with "
        "a zero trigger interval; each produced at once and polled in silver every 0.25 s: "
        f"median {fixed['median_visible_s']} s from produce to visible "
        f"(all: {', '.join(str(x) for x in fixed['visible_s'])}); median batch in the ledger "
        f"{_fmt(fixed['median_batch_ms'])} ms.",
    ]


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
        "Conveyor lands bronze, silver, quarantine and the ledger; docs-medallion bronze, silver "
        "and quarantine; the others one table. CPU (own) counts every process of the contender "
        "(Python, JVM); CPU (machine) is the whole machine's busy time during the drain (broker, "
        "NameNode, DataNode and the idle Airflow included).",
        "",
        "## Latency (produce to visible in the table)",
        "",
        *latency_table(result),
        "",
        "## Steady state: silver with history",
        "",
        *steady_table(result),
        "",
        "## Lone events",
        "",
        *lone_lines(result),
        "",
        "## Fixed cost of a batch",
        "",
        *fixed_lines(result),
        "",
        "## Partitions: the same events from 4 and from 16",
        "",
        *scaling_lines(result),
        "",
        "## Where a batch's time goes",
        "",
        *breakdown(result),
        "",
        "## What Conveyor's tables hold",
        "",
        *layers_table(result),
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
