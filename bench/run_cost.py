"""Per-run cost: the SQL queries and the CPU the portal spends on one run, step by step.

    .venv/bin/python bench/run_cost.py [--runs 200] [--reps 3] [--run-seconds 2] [--clients 20] [--show-queries]

In this process (Django's test client and the Celery task's body, no web server, no worker) against
PostgreSQL, Redis and the Act API simulator (its own process, answering at once), `runs` runs go
through every step an employee's run costs the portal:

- submit: the form POST (`POST /actions/<slug>/`, session and all middleware, the enqueue to Redis);
- run page: the page the POST redirects to;
- dispatch: the `dispatch_run` task's body (claim, re-checks, the Act API call, the outcome);
- poll: the run page's status JSON, while the run waits and once it is final.

For each step: SQL queries (counted by Django), CPU ms of this process (`process_time`; the
simulator runs elsewhere) and CPU ms of PostgreSQL (the backends connected to the bench database,
from /proc: ticks of 10 ms, hence many runs). Then the whole run: submit + run page + dispatch + the polls the run page
makes for a run that takes `--run-seconds` (its schedule replayed from `static/js/run-status.js`'s
numbers, given here). Median of `reps` repetitions.

Then the same runs through the real processes: gunicorn (README's command) and one Celery worker,
`clients` browsers each submitting the form, loading the run page and polling it on the page's
schedule until the run is final (every Act API call takes `--run-seconds`). CPU per run of gunicorn,
the worker, PostgreSQL and Redis from /proc: what a run really costs, HTTP and Celery included.
"""

import re
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import harness as h

SHOW_QUERIES = "--show-queries" in sys.argv  # print each step's SQL once
# After the warm-up: longer than a web process keeps "this action has no finished runs yet" (5 s).
WARM_UP_PAUSE_SECONDS = 6


def polls_for(run_seconds: float, schedule: list[float]) -> int:
    """How many status requests the run page makes until it sees a run that ends after `run_seconds`."""
    elapsed, count = 0.0, 0
    for delay in schedule:
        elapsed += delay
        count += 1
        if elapsed >= run_seconds:
            return count
    return count


def page_schedule(seconds: float = 600, first: float = 1.0) -> list[float]:
    """The run page's delays between polls, in seconds (`static/js/run-status.js`): `first` (the
    page's data-first-poll-ms), then from 1 s x1.3 up to 5 s."""
    if first <= 0:
        raise ValueError(f"the first delay must be positive, not {first}")
    delays, delay, total = [first], 1.0, first
    while total < seconds:
        delay = min(delay * 1.3, 5.0)
        delays.append(delay)
        total += delay
    return delays


class Meter:
    """Queries, this process's CPU and PostgreSQL's CPU over a block, summed per step."""

    def __init__(self):
        self.totals: dict[str, dict[str, float]] = {}

    def measure(self, step: str, call, *args):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        connection.queries_log.clear()  # a full log (9,000) would count nothing
        postgres = h.BackendCpu()
        cpu_before = time.process_time()
        with CaptureQueriesContext(connection) as queries:
            result = call(*args)
        cpu = time.process_time() - cpu_before
        pg = postgres.seconds()
        if SHOW_QUERIES and step not in self.totals:
            print(f"-- {step}: {len(queries.captured_queries)} queries")
            for query in queries.captured_queries:
                print("   ", query["sql"][:160])
        row = self.totals.setdefault(step, {"count": 0, "queries": 0, "cpu": 0.0, "pg": 0.0})
        row["count"] += 1
        row["queries"] += len(queries.captured_queries)
        row["cpu"] += cpu
        row["pg"] += pg
        return result

    def per_call(self) -> dict[str, dict[str, float]]:
        return {
            step: {
                "queries": row["queries"] / row["count"],
                "cpu_ms": row["cpu"] * 1000 / row["count"],
                "pg_ms": row["pg"] * 1000 / row["count"],
            }
            for step, row in self.totals.items()
        }


def one_rep(data: dict, runs: int) -> dict[str, dict[str, float]]:
    from django.test import Client
    from django.urls import reverse

    from actions.models import Run
    from actions.tasks import dispatch_run

    h.truncate_runs()
    employee = Client(HTTP_HOST="127.0.0.1")
    employee.force_login(data["user"])
    action_url = reverse("action_detail", args=[h.DISPATCH_SLUG])
    meter = Meter()

    def ok(response, *codes):
        if response.status_code not in codes:
            h.fail(f"{response.request['PATH_INFO']} answered {response.status_code}")
        return response

    def post(form):
        return ok(employee.post(action_url, form), 302)

    def get(url):
        return ok(employee.get(url), 200)

    for _ in range(runs):
        form = {"device": data["device"].uid, "idempotency_key": secrets.token_urlsafe(24)}
        page = meter.measure("submit (form POST)", post, form)["Location"]
        meter.measure("run page", get, page)
        run_id = page.rstrip("/").rsplit("/", 1)[-1]
        status_url = reverse("run_status", args=[run_id])
        meter.measure("poll, run waiting", get, status_url)
        meter.measure("dispatch (task body)", dispatch_run.run, run_id)
        meter.measure("poll, run final", get, status_url)
    final = Run.objects.filter(status="sent").count()
    if final != runs:
        h.fail(f"only {final} of {runs} runs were sent")
    return meter.per_call()


def browser_run(session, data: dict) -> int:
    """One run as a browser makes it: the form POST, the run page, then its polls until final, on the
    page's schedule (its first delay as the page gives it). Requests made."""
    import requests

    run_url = f"{h.WEB_URL}/runs/{h.submit_form(session, data)}/"
    page = session.get(run_url, timeout=30)  # where the POST's answer sends the browser
    page.raise_for_status()
    requests_made = 2
    if 'data-final="true"' in page.text:
        return requests_made  # final already: the page polls nothing
    first = re.search(r'data-first-poll-ms="(\d+)"', page.text)  # absent before pacing: 1 s
    schedule = page_schedule(first=int(first.group(1)) / 1000 if first else 1.0)
    for delay in schedule:
        time.sleep(delay)
        answer = session.get(run_url + "status.json", headers={"Accept": "application/json"}, timeout=30)
        requests_made += 1
        if answer.status_code != 200:
            h.fail(f"{run_url}status.json answered {answer.status_code}")
        if answer.json()["final"]:
            return requests_made
    raise requests.Timeout(f"{run_url} not final after {sum(schedule):.0f} s")


def end_to_end(bench, data: dict, *, runs: int, clients: int, run_seconds: float) -> dict:
    """`runs` runs through gunicorn and one worker as `clients` browsers make them; CPU per run by process."""
    from concurrent.futures import ThreadPoolExecutor

    h.truncate_runs()
    bench.sim("POST", "/_sim/reset")
    bench.sim("POST", "/_sim/faults", json={"fault": "latency", "action": "*", "times": 0, "seconds": run_seconds})
    web = bench.start_web()
    worker = bench.start_worker("run-cost-worker")
    sessions = h.browser_sessions(clients)
    # Warm-up, not measured: one run per browser, so that the action has the history a running
    # portal has (the page's first poll follows it) and every connection is open.
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda i: browser_run(sessions[i], data), range(clients)))
    time.sleep(WARM_UP_PAUSE_SECONDS)
    groups = {
        "web": lambda: h.cpu_seconds(h.process_tree(web.pid)),
        "worker": lambda: h.cpu_seconds(h.process_tree(worker.pid)),
        "redis": lambda: h.cpu_seconds(h.pids_named("redis-server")),
    }
    before = {name: read() for name, read in groups.items()}
    postgres = h.BackendCpu()
    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        made = list(pool.map(lambda i: browser_run(sessions[i % clients], data), range(runs)))
    wall = time.monotonic() - started
    time.sleep(1)  # the last tasks' acknowledgements
    cpu = {name: (read() - before[name]) * 1000 / runs for name, read in groups.items()}
    cpu["postgres"] = postgres.seconds() * 1000 / runs
    worker.stop()
    web.stop()
    return {
        "runs": runs,
        "requests_per_run": sum(made) / runs,
        "wall_seconds": wall,
        "cpu_ms_per_run": cpu | {"portal": cpu["web"] + cpu["worker"], "all": sum(cpu.values())},
    }


def main() -> None:
    import os

    os.environ["DEVICE_RESOLVERS"] = "directory"  # the seeded device: no Engine's NXQL asked per submit
    os.environ["EMAIL_URL"] = ""
    runs = h.arg_int("runs", 200)
    reps = h.arg_int("reps", 3)
    run_seconds = h.arg_float("run-seconds", 2.0)
    clients = h.arg_int("clients", 20)
    bench = h.Bench("run_cost", web=True)
    data = h.seed(bench)
    bench.start_simulator()
    one_rep(data, 10)  # warm-up: compiled queries, caches, connections
    results = [one_rep(data, runs) for _ in range(reps)]
    steps = list(results[0])
    medians = {
        step: {key: h.median([r[step][key] for r in results]) for key in ("queries", "cpu_ms", "pg_ms")}
        for step in steps
    }
    # The page's schedule for an action whose runs take `run_seconds` (actions/runs/pacing.py; the
    # script also measures the code before it, whose page always waited 1 s).
    try:
        from actions.runs.pacing import first_poll_seconds
    except ImportError:
        first = 1.0
    else:
        first = first_poll_seconds(run_seconds, elapsed=0.0)
    polls = polls_for(run_seconds, page_schedule(first=first))
    waiting, final = medians["poll, run waiting"], medians["poll, run final"]

    def per_run(key: str) -> float:
        fixed = sum(medians[s][key] for s in ("submit (form POST)", "run page", "dispatch (task body)"))
        return fixed + (polls - 1) * waiting[key] + final[key]

    rows = [[step, f"{m['queries']:.1f}", f"{m['cpu_ms']:.2f}", f"{m['pg_ms']:.2f}"] for step, m in medians.items()]
    rows.append(
        [
            f"one run of {run_seconds:g} s ({polls} polls)",
            f"{per_run('queries'):.1f}",
            f"{per_run('cpu_ms'):.2f}",
            f"{per_run('pg_ms'):.2f}",
        ]
    )
    print(f"In this process, median of {reps} x {runs} runs:")
    print(h.table(["step (median per call)", "SQL queries", "CPU ms portal", "CPU ms PostgreSQL"], rows))
    through = [end_to_end(bench, data, runs=runs, clients=clients, run_seconds=run_seconds) for _ in range(reps)]
    e2e = {key: h.median([t["cpu_ms_per_run"][key] for t in through]) for key in through[0]["cpu_ms_per_run"]}
    print(
        f"\nThrough gunicorn and one worker ({clients} browsers, runs of {run_seconds:g} s, "
        f"{h.median([t['requests_per_run'] for t in through]):.1f} requests per run), median of {reps} x {runs} runs:"
    )
    print(h.table(["CPU ms per run", *e2e], [["", *(f"{v:.2f}" for v in e2e.values())]]))
    bench.save(
        {
            "runs": runs,
            "reps": reps,
            "run_seconds": run_seconds,
            "polls_per_run": polls,
            "per_call": medians,
            "per_run": {key: per_run(key) for key in ("queries", "cpu_ms", "pg_ms")},
            "repetitions": results,
            "end_to_end": {"clients": clients, "cpu_ms_per_run": e2e, "repetitions": through},
        }
    )


if __name__ == "__main__":
    main()
