"""Issue 20, item 5: the embedded broker does not crash the worker. Many runs through the demo's own
processes on its own set-up: SQLite, the filesystem broker, the Act API simulator, DEBUG on.

    .venv/bin/python bench/broker_soak.py [--runs 2000] [--rate 20] [--api-seconds 0.05] [--settle 300]
                                          [--max-minutes 30] [--kombu]

The worker and beat run with the demo's commands (actions/management/commands/demo.py,
demo_programs), the simulator as the other benchmarks start it (the demo's program, with Engines on
loopback). Runs are submitted as the portal submits them (actions.runs.submit.run_submit, what the
form POST calls), from this process: one more process publishing to the folder while the worker
polls it, as the web server does. `--rate N`: N runs a second (0: back to back). The default, 20,
is below what the demo's worker sends (about 30 a second here), so the queue is mostly empty and the
worker's next look is at the message just being written: where kombu#1551 bites (with a backlog the
worker reads the oldest messages and never the newest).

As bin/demo's supervisor does, a worker or beat that exits is started again (after 1 s); each exit
is counted. Reported: worker exits, "Unrecoverable error" lines in the worker's logs, runs left
non-final `--settle` seconds after the last submit, unreadable messages set aside (`*.bad`), and the
wall time. `--kombu`: the same with kombu's own filesystem transport (bench/settings.py), to compare.
Bounded: at most `--max-minutes` for the submits and `--settle` s after; every process is stopped
at the end. Everything listens on 127.0.0.1 only.
"""

import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import harness as h


class Supervised:
    """A demo process, started again (after 1 s) each time it exits, as `manage.py demo` does."""

    def __init__(self, bench, name: str, argv: list[str], ready, env: dict | None = None):
        self.bench, self.name, self.argv, self.ready, self.env = bench, name, argv, ready, env
        self.exits: list[int] = []
        self.logs: list[Path] = []
        self._stop = threading.Event()
        self.service = self._start()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _start(self):
        name = self.name if not self.logs else f"{self.name}-{len(self.logs) + 1}"
        service = self.bench.start(name, self.argv, self.ready, env=self.env, wait=False)
        self.logs.append(service.log_path)
        return service

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            code = self.service.process.poll()
            if code is not None:
                self.exits.append(code)
                h.log(f"{self.name} exited ({code}); starting it again in 1 s")
                if self._stop.wait(1):
                    return
                self.service = self._start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def log_count(self, text: str) -> int:
        return sum(path.read_text(errors="replace").count(text) for path in self.logs if path.exists())


def main() -> None:
    runs = h.arg_int("runs", 2000)
    rate = h.arg_float("rate", 20)
    api_seconds = h.arg_float("api-seconds", 0.05)
    settle = h.arg_float("settle", 300)
    max_seconds = h.arg_float("max-minutes", 30) * 60
    kombu = "--kombu" in sys.argv
    if kombu:
        os.environ["BENCH_KOMBU_FILESYSTEM"] = "1"  # read by bench/settings.py, in every process
    bench = h.Bench("broker_soak_kombu" if kombu else "broker_soak", embedded=True)
    from actions.models import Run
    from actions.runs.states import FINAL
    from actions.runs.submit import run_submit
    from portal.celery import app
    from simulators.management.commands.demo import demo_programs

    with app.connection_for_write() as conn:
        transport = f"{type(conn.transport).__module__}.{type(conn.transport).__name__}"
    data = h.seed(bench, visible=10, hidden=0, dispatch_latency=api_seconds)
    programs = demo_programs(host="127.0.0.1", port=h.WEB_PORT, sim_port=h.SIM_PORT)
    bench.start_simulator()
    ready_file = bench.var_dir / "worker.ready"
    worker = Supervised(
        bench, "worker", programs["worker"], ready_file.exists, env=bench.env | {"BENCH_READY_FILE": str(ready_file)}
    )
    beat = Supervised(bench, "beat", programs["beat"], lambda: "Starting..." in beat.logs[-1].read_text())
    worker.service.wait_ready()
    beat.service.wait_ready()
    concurrency = bench.settings.CELERY_WORKER_CONCURRENCY
    h.log(f"{runs} runs on {transport}, worker {' '.join(programs['worker'][3:])} (-c {concurrency}), beat")

    started = time.monotonic()
    ids, not_enqueued = [], 0
    for i in range(runs):
        if time.monotonic() - started > max_seconds:
            h.log(f"stopped submitting after {max_seconds / 60:.0f} min")
            break
        run = run_submit(user=data["user"], action=data["dispatch_action"], device=data["device"], params={})
        ids.append(str(run.pk))
        not_enqueued += run.enqueued is False
        if rate:
            time.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))
        if (i + 1) % 500 == 0:
            final = Run.objects.filter(pk__in=ids, status__in=FINAL).count()
            h.log(f"{i + 1} submitted, {final} final, worker exits so far {len(worker.exits)}")
    submitted_s = time.monotonic() - started
    final, total = h.wait_final(ids, timeout=settle, poll=0.5)
    wall_s = time.monotonic() - started
    worker.stop()
    beat.stop()
    times = h.run_times(ids)
    spans = [r["finished_at"] - r["created_at"] for r in times.values() if r["finished_at"]]
    broker = Path(bench.settings.BROKER_DIR)
    results = {
        "settings": {
            "runs": runs,
            "rate_per_s": rate,
            "api_seconds": api_seconds,
            "settle_s": settle,
            "transport": transport,
            "worker": programs["worker"][3:] + [f"(concurrency {concurrency})"],
            "database": "SQLite",
        },
        "submitted": len(ids),
        "not_enqueued": not_enqueued,
        "final": final,
        "left_non_final": total - final,
        "statuses": h.statuses(times),
        "worker_exits": len(worker.exits),
        "worker_exit_codes": worker.exits,
        "unrecoverable_errors": worker.log_count("Unrecoverable error"),
        "json_decode_errors": worker.log_count("JSONDecodeError"),
        "beat_exits": len(beat.exits),
        "messages_set_aside": len(list((broker / "processed").glob("*.bad"))),
        "part_files_left": len(list((broker / "queue").glob(".*.part"))),
        "submit_s": submitted_s,
        "wall_s": wall_s,
        "submit_to_final_s": {"p50": h.pct(spans, 50), "p95": h.pct(spans, 95), "max": max(spans, default=0.0)},
    }
    print()
    print(f"Broker soak: {len(ids)} runs through the demo's worker and beat on {transport}, SQLite")
    rows = [
        ["worker exits (crashes)", results["worker_exits"]],
        ['"Unrecoverable error" in worker logs', results["unrecoverable_errors"]],
        ["JSONDecodeError in worker logs", results["json_decode_errors"]],
        ["beat exits", results["beat_exits"]],
        [f"runs left non-final {settle:.0f} s after the last submit", results["left_non_final"]],
        ["runs the broker refused at submit", not_enqueued],
        ["unreadable messages set aside (*.bad)", results["messages_set_aside"]],
        ["statuses", results["statuses"]],
        [
            "submit -> final p50 / p95 / max, s",
            "{p50:.2f} / {p95:.2f} / {max:.1f}".format(**results["submit_to_final_s"]),
        ],
        ["submits took, s", submitted_s],
        ["wall time, s", wall_s],
    ]
    print(h.table(["figure", "value"], rows))
    bench.save(results)
    clean = not (results["worker_exits"] or results["unrecoverable_errors"] or results["left_non_final"])
    sys.exit(0 if clean else 1)


if __name__ == "__main__":
    main()
