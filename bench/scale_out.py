"""Figure 4: scale-out. Throughput of one worker process, then two, against the same Redis and
PostgreSQL (and the same simulator), and where the time goes.

    .venv/bin/python bench/scale_out.py [--runs 1000] [--reps 3] [--slow-runs 1000] [--concurrency N]

Two workloads, each with the runs queued first (actions.runs.submit.run_submit, no worker running),
then the worker process(es) started; throughput = runs ÷ (last finished_at - first sending_at):
  fast API  the simulator answers at once: the portal's own cost per run (worker CPU, PostgreSQL,
            Redis) is all there is, so this shows what limits throughput next.
  slow API  every call takes 2 s: throughput is bounded by concurrency (C/2 runs/s per process).
CPU seconds of each group of processes over the run (from /proc) say which one is the bottleneck.
The figure is 2-worker throughput ÷ 1-worker throughput, median of --reps (slow API: one rep).
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import harness as h


def one(bench, data, sim, *, workers: int, runs: int, concurrency: int, api_seconds: float) -> dict:
    h.truncate_runs()
    bench.sim("POST", "/_sim/reset")
    if api_seconds:
        bench.sim("POST", "/_sim/faults", json={"fault": "latency", "action": "*", "times": 0, "seconds": api_seconds})
    ids, _, _ = h.submit_runs(data, runs)
    # Both workers start together; they consume as soon as they are up.
    services = bench.start_workers([f"w{i}of{workers}" for i in range(1, workers + 1)], concurrency=concurrency)
    sampler = h.Sampler([s.pid for s in services])
    started = time.time()
    groups = {"redis": h.pids_named("redis-server"), "simulator": [sim.pid]}
    before = {name: h.cpu_seconds(pids) for name, pids in groups.items()}
    before["workers"] = sum(h.cpu_seconds(h.process_tree(s.pid)) for s in services)
    postgres_before = h.cpu_by_pid(h.pids_named("postgres"))  # backends that start later count in full
    machine_before = h.machine_cpu_seconds()
    final, total = h.wait_final(ids, timeout=120, poll=0.1)
    ended = time.time()
    machine = h.machine_cpu_seconds() - machine_before
    sampler.stop()
    cpu = {"workers": sum(h.cpu_seconds(h.process_tree(s.pid)) for s in services) - before["workers"]}
    postgres_after = h.cpu_by_pid(h.pids_named("postgres"))
    cpu["postgres"] = sum(v - postgres_before.get(pid, 0.0) for pid, v in postgres_after.items())
    cpu |= {name: h.cpu_seconds(pids) - before[name] for name, pids in groups.items()}
    cpu["other"] = machine - sum(cpu.values())  # this script's polling, and anything else on the machine
    for service in services:
        service.stop()
    times = h.run_times(ids)
    sending = [t["sending_at"] for t in times.values() if t["sending_at"]]
    finished = [t["finished_at"] for t in times.values() if t["finished_at"]]
    span = max(finished) - min(sending)
    wall = ended - started
    result = {
        "workers": workers,
        "runs": runs,
        "final": final,
        "statuses": h.statuses(times),
        "span_seconds": span,
        "throughput_per_s": runs / span if final == total else None,
        "theory_per_s": workers * concurrency / api_seconds if api_seconds else None,
        "cpu_seconds": cpu,
        # CPU per run over the window from "workers ready" to "all final" (the few runs done before
        # the window are counted in `runs` too: a slight underestimate).
        "cpu_per_run_ms": {k: v * 1000 / runs for k, v in cpu.items()},
        "machine_cpu_busy": machine / wall / (os.cpu_count() or 1),
        "peak_db_connections": sampler.peak_connections,
        "peak_worker_rss_mib": sampler.peak_rss_kb / 1024,
    }
    h.log(
        f"{'slow' if api_seconds else 'fast'} API, {workers} worker(s): {runs / span:.0f} runs/s over {span:.1f} s; "
        f"CPU/run ms {', '.join(f'{k} {v:.1f}' for k, v in result['cpu_per_run_ms'].items())}; "
        f"peak DB connections {sampler.peak_connections}"
    )
    return result


def main() -> None:
    runs = h.arg_int("runs", 1000)
    slow_runs = h.arg_int("slow-runs", 1000)
    reps = h.arg_int("reps", 3)
    bench = h.Bench("scale_out")
    concurrency = h.arg_int("concurrency", bench.settings.CELERY_WORKER_CONCURRENCY)
    data = h.seed(bench)
    sim = bench.start_simulator()
    fast = {1: [], 2: []}
    for _ in range(reps):
        for workers in (1, 2):
            fast[workers].append(
                one(bench, data, sim, workers=workers, runs=runs, concurrency=concurrency, api_seconds=0)
            )
    slow = {
        w: one(bench, data, sim, workers=w, runs=slow_runs, concurrency=concurrency, api_seconds=2.0) for w in (1, 2)
    }
    ratios = [two["throughput_per_s"] / one_["throughput_per_s"] for one_, two in zip(fast[1], fast[2], strict=True)]
    summary = {
        "fast": {
            w: {
                "throughput_per_s": h.median([r["throughput_per_s"] for r in fast[w]]),
                "cpu_per_run_ms": {
                    k: h.median([r["cpu_per_run_ms"][k] for r in fast[w]]) for k in fast[w][0]["cpu_per_run_ms"]
                },
                "machine_cpu_busy": h.median([r["machine_cpu_busy"] for r in fast[w]]),
                "peak_db_connections": max(r["peak_db_connections"] for r in fast[w]),
            }
            for w in (1, 2)
        },
        "fast_ratio_2_to_1": h.median(ratios),
        "slow": {
            w: {k: slow[w][k] for k in ("throughput_per_s", "theory_per_s", "span_seconds", "peak_db_connections")}
            for w in (1, 2)
        },
    }
    summary["slow_ratio_2_to_1"] = slow[2]["throughput_per_s"] / slow[1]["throughput_per_s"]
    print()
    print(f"Figure 4: scale-out, worker --pool threads -c {concurrency} per process, same Redis/PostgreSQL/simulator")
    print(f"fast API: {runs} runs, median of {reps}; slow API (2 s per call): {slow_runs} runs, one repetition\n")
    rows = []
    for w in (1, 2):
        f = summary["fast"][w]
        cpu = f["cpu_per_run_ms"]
        rows.append(
            [
                f"fast API, {w} worker(s)",
                f["throughput_per_s"],
                "-",
                f"{f['throughput_per_s'] / summary['fast'][1]['throughput_per_s']:.2f}",
                " / ".join(f"{cpu[k]:.1f}" for k in ("workers", "postgres", "redis", "simulator", "other")),
                f"{f['machine_cpu_busy']:.0%}",
                f["peak_db_connections"],
            ]
        )
    for w in (1, 2):
        s = slow[w]
        cpu = s["cpu_per_run_ms"]
        rows.append(
            [
                f"slow API, {w} worker(s)",
                s["throughput_per_s"] or "not all final",
                s["theory_per_s"],
                f"{(s['throughput_per_s'] or 0) / (slow[1]['throughput_per_s'] or 1):.2f}",
                " / ".join(f"{cpu[k]:.1f}" for k in ("workers", "postgres", "redis", "simulator", "other")),
                f"{s['machine_cpu_busy']:.0%}",
                s["peak_db_connections"],
            ]
        )
    headers = [
        "workload",
        "runs/s",
        "theory runs/s",
        "÷ 1 worker",
        "CPU ms/run: workers / PG / Redis / simulator / other",
        "CPU busy",
        "peak DB conns",
    ]
    print(h.table(headers, rows))
    bench.save(
        {
            "settings": {"runs": runs, "slow_runs": slow_runs, "reps": reps, "concurrency": concurrency},
            "fast": fast,
            "slow": slow,
            "summary": summary,
        }
    )


if __name__ == "__main__":
    main()
