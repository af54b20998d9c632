"""The results table of bench/README.md, from the JSON files the bench scripts wrote in var/bench/.

.venv/bin/python bench/report.py
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import harness as h


def load(name: str) -> dict | None:
    path = h.RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def yes(flag) -> str:
    return "met" if flag else "**not met**"


def main() -> None:
    rows = []
    machine = None
    catalog = load("catalog")
    if catalog:
        machine = catalog["machine"]
        s = catalog["summary"]
        actions = catalog.get("visible_actions", 100)
        pages = catalog.get("pages", {})
        employees = catalog.get("settings", {}).get("employees", 0)
        figures = [
            ("", s, pages.get("catalog_bytes"), ">= 0.50", yes(s["target_met"])),
            (f", {employees} employees", s.get("many"), pages.get("many_bytes_median"), "(report)", ""),
            (", cold card cache", s.get("cold"), pages.get("catalog_bytes"), "(report)", ""),
        ]
        for label, f, size, target, met in figures:
            if not f:
                continue
            kb = f", {size / 1000:.0f} kB" if size else ""
            rows.append(
                [
                    f"1 catalog, {actions} actions{label}, wrk -c32",
                    f"{f['catalog']['rps']:.0f} req/s; p50 {f['catalog']['p50_ms']:.0f} ms, "
                    f"p99 {f['catalog']['p99_ms']:.0f} ms{kb}",
                    f"hello {f['hello']['rps']:.0f} req/s; p50 {f['hello']['p50_ms']:.0f} ms, "
                    f"p99 {f['hello']['p99_ms']:.0f} ms",
                    f"{f['ratio']:.2f} (CPU/request: {f['cpu_ratio']:.2f})",
                    target,
                    met,
                ]
            )
    dispatch = load("dispatch")
    if dispatch:
        machine = machine or dispatch["machine"]
        s = dispatch["summary"]
        for key, label in (("to_api", "form POST sent → simulator received"), ("to_final", "answered → run final")):
            rows.append(
                [
                    f"2 dispatch: {label}",
                    f"p50 {s['p50'][key]:.1f} ms, p95 {s['p95'][key]:.1f} ms",
                    f"API's own time p50 {s['p50']['api']:.0f} ms",
                    f"{s['ratio_' + key]['p50']:.3f} / {s['ratio_' + key]['p95']:.3f}",
                    "p50 < 50 ms",
                    yes(s["p50"][key] < 50),
                ]
            )
    burst = load("burst")
    if burst:
        machine = machine or burst["machine"]
        t = burst["summary"]["threads"]
        runs = burst["settings"]["runs"]
        c = burst["settings"]["concurrency"]
        rows.append(
            [
                f"3 burst through HTTP, {runs} runs × 2 s API, threads -c {c}",
                f"all final in {t['elapsed_seconds']:.1f} s (POSTs {t['submit_seconds']:.1f} s, then "
                f"{t['after_last_submit_seconds'] or 0:.1f} s); peak RSS {t['peak_rss_mib_sum_vmhwm']:.0f} MiB; "
                f"{t['peak_db_connections']} DB connections",
                f"theory {t['theory_seconds']:.1f} s",
                f"{t['efficiency']:.2f}" if t["efficiency"] else "-",
                "<= 30 s and >= 0.80",
                yes(burst["summary"]["target_met"]),
            ]
        )
        for p in burst["prefork"]:
            measured = f"{p['runs']} runs in {p['elapsed_seconds']:.1f} s" if p["elapsed_seconds"] else "not all final"
            if "extrapolated_seconds_for_full_burst" in p:
                measured += f" → {runs} runs ≈ {p['extrapolated_seconds_for_full_burst']:.0f} s"
            rows.append(
                [
                    f"3 same burst, prefork -c {p['concurrency']}",
                    f"{measured}; peak RSS {p['peak_rss_mib_sum_vmhwm']:.0f} MiB ({p['processes']} processes)",
                    f"theory {runs * 2 / p['concurrency']:.0f} s",
                    f"{p['efficiency']:.2f}" if p["efficiency"] else "-",
                    "(comparison)",
                    "",
                ]
            )
    scale = load("scale_out")
    if scale:
        machine = machine or scale["machine"]
        s = scale["summary"]
        rows.append(
            [
                "4 scale-out, fast API",
                f"1 worker {s['fast']['1']['throughput_per_s']:.0f} runs/s, 2 workers {s['fast']['2']['throughput_per_s']:.0f} runs/s",
                "1 worker",
                f"{s['fast_ratio_2_to_1']:.2f}",
                "(report)",
                "",
            ]
        )
        rows.append(
            [
                "4 scale-out, 2 s API",
                f"1 worker {s['slow']['1']['throughput_per_s']:.0f} runs/s, 2 workers {s['slow']['2']['throughput_per_s']:.0f} runs/s",
                f"theory {s['slow']['1']['theory_per_s']:.0f} / {s['slow']['2']['theory_per_s']:.0f} runs/s",
                f"{s['slow_ratio_2_to_1']:.2f}",
                ">= 1.70",
                yes(s["slow_ratio_2_to_1"] >= 1.7),
            ]
        )
    cost = load("run_cost")
    if cost and "end_to_end" in cost:
        machine = machine or cost["machine"]
        e = cost["end_to_end"]["cpu_ms_per_run"]
        rows.append(
            [
                f"0 one run's CPU, {cost['run_seconds']:g} s API, through gunicorn and a worker",
                f"{e['all']:.1f} ms: web {e['web']:.1f}, worker {e['worker']:.1f}, PostgreSQL {e['postgres']:.1f}, "
                f"Redis {e['redis']:.1f}",
                "before: bench/README.md",
                "-",
                "÷ 3",
                "",
            ]
        )
    if machine:
        print(
            f"{machine['date']}, commit {machine['commit']}: {machine['nproc']} CPUs ({machine['cpu']}), "
            f"{machine['memory_gib']} GiB, PostgreSQL {machine['postgresql']}, Redis {machine['redis']}, "
            f"Python {machine['python']}\n"
        )
    print(h.table(["figure", "measured (median)", "baseline", "ratio", "target", ""], rows))


if __name__ == "__main__":
    main()
