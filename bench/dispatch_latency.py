"""Figure 2: dispatch overhead. Runs go through the real path, one form POST each, paced:
gunicorn (form POST) -> Redis -> `celery worker --pool threads` -> simulator over HTTP -> PostgreSQL.

    .venv/bin/python bench/dispatch_latency.py [--runs 200] [--reps 3] [--rate 10] [--api-seconds 0.2]

Per run, from the client's clock, the run's timestamps and the simulator's request log (one clock:
everything is on this machine):
  to_api    = simulator received the call  - the client sent the form POST (the POST's own time included)
  api       = simulator answered           - simulator received (the baseline: the API's own time)
  to_final  = run final in the database (finished_at) - simulator answered
Target: p50 of to_api and of to_final under 50 ms each. Medians over repetitions of `runs` runs.
"""

import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import harness as h

FIGURES = (
    "post",
    "to_api",
    "returned_to_api",
    "api",
    "to_final",
    "end_to_end",
    "stored_to_api",
    "queue_wait",
    "claim_to_send",
)


def one_rep(bench, session, data, *, runs: int, rate: float) -> dict:
    bench.sim("POST", "/_sim/reset")
    url = f"{h.WEB_URL}/actions/{h.DISPATCH_SLUG}/"
    csrf = session.cookies["csrftoken"]
    posts = []
    next_at = time.monotonic()
    for _ in range(runs):
        form = {"device": data["device"].uid, "idempotency_key": secrets.token_urlsafe(24), "csrfmiddlewaretoken": csrf}
        sent = time.time()
        response = session.post(url, data=form, allow_redirects=False, timeout=30)
        returned = time.time()
        if response.status_code != 302 or "/runs/" not in response.headers.get("Location", ""):
            h.fail(f"the form POST did not make a run: HTTP {response.status_code}")
        posts.append((response.headers["Location"].rstrip("/").rsplit("/", 1)[1], sent, returned))
        next_at += 1 / rate
        time.sleep(max(0.0, next_at - time.monotonic()))
    final, total = h.wait_final([p[0] for p in posts], timeout=60)
    if final != total:
        h.fail(f"only {final} of {total} runs became final within 60 s")
    runs_db = h.run_times(p[0] for p in posts)
    sim = h.sim_times(bench)
    per_run = []
    for run_id, sent, returned in posts:
        r, s = runs_db[run_id], sim[run_id]
        per_run.append(
            {
                "post": (returned - sent) * 1000,
                "to_api": (s["received_at"] - sent) * 1000,
                "returned_to_api": (s["received_at"] - returned) * 1000,
                "api": (s["answered_at"] - s["received_at"]) * 1000,
                "to_final": (r["finished_at"] - s["answered_at"]) * 1000,
                "end_to_end": (r["finished_at"] - sent) * 1000,
                "stored_to_api": (s["received_at"] - r["created_at"]) * 1000,
                "queue_wait": (r["sending_at"] - returned) * 1000,
                "claim_to_send": (s["received_at"] - r["sending_at"]) * 1000,
            }
        )
    return {
        "statuses": h.statuses(runs_db),
        "p50": {k: h.pct([p[k] for p in per_run], 50) for k in FIGURES},
        "p95": {k: h.pct([p[k] for p in per_run], 95) for k in FIGURES},
        "max": {k: max(p[k] for p in per_run) for k in FIGURES},
    }


def main() -> None:
    runs = h.arg_int("runs", 200)
    reps = h.arg_int("reps", 3)
    rate = h.arg_float("rate", 10)
    api_seconds = h.arg_float("api-seconds", 0.2)
    bench = h.Bench("dispatch", web=True)
    data = h.seed(bench, dispatch_latency=api_seconds)
    concurrency = bench.settings.CELERY_WORKER_CONCURRENCY
    bench.start_simulator()
    bench.start_worker("worker1", concurrency=concurrency)
    bench.start_web()
    session = h.login()
    h.log(f"warm-up (20 runs), then {reps} x {runs} runs at {rate}/s, API {api_seconds * 1000:.0f} ms")
    one_rep(bench, session, data, runs=20, rate=rate)
    results = []
    for rep in range(1, reps + 1):
        result = one_rep(bench, session, data, runs=runs, rate=rate)
        results.append(result)
        p50 = result["p50"]
        h.log(
            f"rep {rep}: p50 to_api {p50['to_api']:.1f} ms, api {p50['api']:.1f} ms, to_final {p50['to_final']:.1f} ms "
            f"({result['statuses']})"
        )
    summary = {q: {k: h.median([r[q][k] for r in results]) for k in FIGURES} for q in ("p50", "p95")}
    api = summary["p50"]["api"]
    summary["ratio_to_api"] = {q: summary[q]["to_api"] / api for q in ("p50", "p95")}
    summary["ratio_to_final"] = {q: summary[q]["to_final"] / api for q in ("p50", "p95")}
    summary["target_met"] = summary["p50"]["to_api"] < 50 and summary["p50"]["to_final"] < 50
    print()
    print(f"Figure 2: dispatch overhead, {runs} form POSTs at {rate}/s, worker --pool threads -c {concurrency}")
    print(f"median over {reps} repetitions; baseline = the API's own time (simulator answers after {api_seconds} s)\n")
    labels = {
        "to_api": "form POST sent -> simulator received",
        "to_final": "simulator answered -> run final in DB",
        "api": "baseline: the API's own time",
        "end_to_end": "form POST sent -> run final",
        "returned_to_api": "(POST returned -> simulator received)",
        "stored_to_api": "(run stored -> simulator received)",
        "queue_wait": "(POST returned -> claimed; < 0: claimed first)",
        "claim_to_send": "(claimed -> simulator received)",
        "post": "(the form POST itself)",
    }
    rows = [
        [
            label,
            summary["p50"][k],
            summary["p95"][k],
            summary["p50"][k] / api if k != "api" else 1.0,
        ]
        for k, label in labels.items()
    ]
    print(h.table(["interval", "p50 ms", "p95 ms", "p50 ÷ API time"], rows))
    print(f"\ntarget (p50 under 50 ms each): {'met' if summary['target_met'] else 'NOT met'}")
    bench.save(
        {
            "settings": {
                "runs": runs,
                "reps": reps,
                "rate_per_s": rate,
                "api_seconds": api_seconds,
                "worker": f"--pool threads --concurrency {concurrency}",
            },
            "reps": results,
            "summary": summary,
        }
    )


if __name__ == "__main__":
    main()
