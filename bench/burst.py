"""Figure 3: a burst of runs while every Act API call takes 2 s, one worker process.

    .venv/bin/python bench/burst.py [--runs 500] [--reps 3] [--concurrency N] [--clients 16] [--prefork-batch 20]
                                    [--no-prefork] [--prefork-same-concurrency]

The runs are submitted through HTTP: the action page's form POST to gunicorn (README's production
command), from `--clients` concurrent signed-in sessions (default 16), all at once, while the worker
is already running. Then they go the real path: Redis -> `celery worker` -> simulator over HTTP (the
simulator's "latency" fault, times=0, seconds=2: every call answers after 2 s) -> PostgreSQL. The
clock starts before the first POST and stops at the last run's finished_at.

With C threads and 2 s per call, the worker allows C/2 runs/s, so N runs need at least 2N/C s; and
the last run cannot end before its own 2 s call after its POST was answered. Theory is the later of
the two; the figure is theory ÷ the measured time (target >= 0.8, and all final within 30 s). The
time from the last POST to the last run final is reported beside it.

Side by side, Celery's default prefork pool (concurrency = CPU count): it does 2 calls at a time,
so 500 runs would take ~500 s; it is measured on a smaller batch (--prefork-batch) and the 500-run
time extrapolated from its throughput. --prefork-same-concurrency also runs prefork with C
processes, for its memory at equal concurrency.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import harness as h

API_SECONDS = 2.0


def burst(bench, data, sessions, *, runs: int, pool: str, concurrency: int | None, label: str) -> dict:
    h.truncate_runs()
    bench.sim("POST", "/_sim/reset")
    bench.sim("POST", "/_sim/faults", json={"fault": "latency", "action": "*", "times": 0, "seconds": API_SECONDS})
    worker = bench.start_worker(label, pool=pool, concurrency=concurrency)
    sampler = h.Sampler([worker.pid])
    ids, started, submitted = h.submit_runs_http(data, runs, sessions)
    # The fastest the burst could end: the worker's C calls at a time from the first submit, and the
    # last run's own call after its submit (the POSTs take a while on this machine too).
    theory = max(runs * API_SECONDS / concurrency, submitted - started + API_SECONDS)
    final, total = h.wait_final(ids, timeout=max(60.0, 3 * theory), poll=0.1)
    sampler.stop()
    tree = h.process_tree(worker.pid)
    processes = len(tree)
    hwm_kb = sum(h.status_kb(pid, "VmHWM") for pid in tree)
    worker.stop()
    times = h.run_times(ids)
    sim = h.sim_times(bench)
    # From the claim to the simulator receiving the call: would show a worker short of database
    # connections, or a listen backlog dropping connections, as seconds rather than milliseconds.
    to_api = [
        (sim[i]["received_at"] - t["sending_at"]) * 1000 for i, t in times.items() if i in sim and t["sending_at"]
    ]
    finished = [t["finished_at"] for t in times.values() if t["finished_at"]]
    elapsed = (max(finished) - started) if final == total else None
    span = max(finished) - min(finished) if len(finished) > 1 else None
    throughput = (len(finished) - 1) / span if span else None  # runs/s once the pipeline is full
    result = {
        "pool": pool,
        "concurrency": concurrency,
        "processes": processes,
        "runs": runs,
        "final": final,
        "statuses": h.statuses(times),
        "submit_seconds": submitted - started,
        "elapsed_seconds": elapsed,
        "after_last_submit_seconds": (max(finished) - submitted) if final == total else None,
        "theory_seconds": theory,
        "efficiency": theory / elapsed if elapsed else None,
        "throughput_per_s": throughput,
        "peak_rss_mib_sum_vmhwm": hwm_kb / 1024,
        "peak_rss_mib_sampled": sampler.peak_rss_kb / 1024,
        "peak_pss_mib_sampled": sampler.peak_pss_kb / 1024,
        "peak_db_connections": sampler.peak_connections,
        "claim_to_api_ms": {
            "p50": h.pct(to_api, 50),
            "p95": h.pct(to_api, 95),
            "max": max(to_api, default=0),
            "over_900": sum(v > 900 for v in to_api),  # a dropped SYN is retried after 1 s
        },
    }
    h.log(
        f"{label}: {final}/{total} final"
        + (f" in {elapsed:.1f} s (theory {theory:.1f} s, efficiency {theory / elapsed:.2f})" if elapsed else "")
        + f", peak RSS {result['peak_rss_mib_sum_vmhwm']:.0f} MiB, peak DB connections {sampler.peak_connections}"
    )
    return result


def main() -> None:
    runs = h.arg_int("runs", 500)
    reps = h.arg_int("reps", 3)
    prefork_batch = h.arg_int("prefork-batch", 20)
    bench = h.Bench("burst", web=True)
    concurrency = h.arg_int("concurrency", bench.settings.CELERY_WORKER_CONCURRENCY)
    clients = h.arg_int("clients", 16)
    data = h.seed(bench)
    bench.start_simulator()
    bench.start_web()
    sessions = h.browser_sessions(clients)
    h.log(f"PostgreSQL max_connections = {bench.max_connections}")
    threads = [
        burst(bench, data, sessions, runs=runs, pool="threads", concurrency=concurrency, label=f"threads{rep}")
        for rep in range(1, reps + 1)
    ]
    prefork = []
    if "--no-prefork" not in sys.argv:
        # Celery's own default concurrency is the number of CPUs (the portal's setting would override it).
        default = os.cpu_count() or 1
        prefork.append(
            burst(
                bench, data, sessions, runs=prefork_batch, pool="prefork", concurrency=default, label="prefork-default"
            )
        )
        if "--prefork-same-concurrency" in sys.argv:
            prefork.append(
                burst(bench, data, sessions, runs=runs, pool="prefork", concurrency=concurrency, label="prefork-same")
            )
    for result in prefork:  # what the full burst would take, from the measured throughput
        if result["runs"] < runs and result["throughput_per_s"]:
            result["extrapolated_seconds_for_full_burst"] = result["submit_seconds"] + runs / result["throughput_per_s"]

    def med(key):
        values = [r[key] for r in threads if r[key] is not None]
        return h.median(values) if len(values) == len(threads) else None

    summary = {
        "threads": {
            key: med(key)
            for key in (
                "elapsed_seconds",
                "theory_seconds",
                "efficiency",
                "submit_seconds",
                "after_last_submit_seconds",
                "throughput_per_s",
                "peak_rss_mib_sum_vmhwm",
                "peak_pss_mib_sampled",
                "peak_db_connections",
            )
        }
    }
    t = summary["threads"]
    summary["target_met"] = bool(t["elapsed_seconds"] and t["elapsed_seconds"] <= 30 and t["efficiency"] >= 0.8)
    print()
    print(f"Figure 3: burst of {runs} runs, every Act API call 2 s, one worker process; PostgreSQL")
    print(f"max_connections {bench.max_connections}. threads: median of {reps} repetitions.\n")
    rows = [
        [
            f"threads -c {concurrency}",
            runs,
            t["submit_seconds"],
            t["after_last_submit_seconds"] or "-",
            f"{t['elapsed_seconds']:.1f}" if t["elapsed_seconds"] else "not all final (see JSON)",
            t["theory_seconds"],
            f"{t['efficiency']:.2f}" if t["efficiency"] else "-",
            t["throughput_per_s"] or "-",
            t["peak_rss_mib_sum_vmhwm"],
            t["peak_pss_mib_sampled"],
            t["peak_db_connections"],
        ]
    ]
    for r in prefork:
        measured = f"{r['elapsed_seconds']:.1f}" if r["elapsed_seconds"] else "not all final"
        if "extrapolated_seconds_for_full_burst" in r:
            measured += f" (500 runs: ~{r['extrapolated_seconds_for_full_burst']:.0f} extrapolated)"
        rows.append(
            [
                f"prefork -c {r['concurrency']} ({r['processes']} processes)",
                r["runs"],
                r["submit_seconds"],
                r["after_last_submit_seconds"] or "-",
                measured,
                r["theory_seconds"],
                f"{r['efficiency']:.2f}" if r["efficiency"] else "-",
                r["throughput_per_s"] or "-",
                r["peak_rss_mib_sum_vmhwm"],
                r["peak_pss_mib_sampled"],
                r["peak_db_connections"],
            ]
        )
    headers = [
        "pool",
        "runs",
        "POSTs took s",
        "last POST -> all final s",
        "all final after s",
        "theory s",
        "theory ÷ measured",
        "runs/s",
        "peak RSS MiB",
        "peak PSS MiB",
        "peak DB conns",
    ]
    print(h.table(headers, rows))
    print(f"\ntarget (all final <= 30 s, >= 0.8 of theory): {'met' if summary['target_met'] else 'NOT met'}")
    bench.save(
        {
            "settings": {"runs": runs, "reps": reps, "api_seconds": API_SECONDS, "concurrency": concurrency},
            "max_connections": bench.max_connections,
            "threads": threads,
            "prefork": prefork,
            "summary": summary,
        }
    )


if __name__ == "__main__":
    main()
