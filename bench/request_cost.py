"""CPU per request through gunicorn, for each page a run touches and for the bare signed-in view.

    .venv/bin/python bench/request_cost.py [--requests 300] [--reps 3]

gunicorn as README's production command, one signed-in browser (keep-alive), `requests` sequential
requests of each page; gunicorn's and PostgreSQL's CPU per request from /proc. The bare signed-in
view (`/bench/hello`: the session, the user and the whole middleware, no query of the portal's own,
no template) is what any signed-in request costs before its view does anything: a floor under
every request of a run (bench/README.md, figure 0). Median of `reps` repetitions.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import harness as h


def pages(run_id: str) -> list[tuple[str, str, dict]]:
    run_url = f"{h.WEB_URL}/runs/{run_id}/"
    return [
        ("bare signed-in view (/bench/hello)", f"{h.WEB_URL}/bench/hello", {}),
        ("action page (the form)", f"{h.WEB_URL}/actions/{h.DISPATCH_SLUG}/", {}),
        ("run page, run final", run_url, {}),
        ("status JSON, run final", run_url + "status.json", {"Accept": "application/json"}),
    ]


def measure(session, web, url: str, headers: dict, count: int) -> dict[str, float]:
    postgres = h.BackendCpu()
    before = h.cpu_seconds(h.process_tree(web.pid))
    for _ in range(count):
        answer = session.get(url, headers=headers, timeout=30)
        if answer.status_code != 200:
            h.fail(f"{url} answered {answer.status_code}")
    return {
        "gunicorn_ms": (h.cpu_seconds(h.process_tree(web.pid)) - before) * 1000 / count,
        "postgres_ms": postgres.seconds() * 1000 / count,
    }


def main() -> None:
    import os

    os.environ["DEVICE_RESOLVERS"] = "directory"  # as bench/run_cost.py: no Engine asked per action page
    os.environ["EMAIL_URL"] = ""
    count = h.arg_int("requests", 300)
    reps = h.arg_int("reps", 3)
    bench = h.Bench("request_cost", web=True)
    data = h.seed(bench)
    bench.start_simulator()
    web = bench.start_web()
    worker = bench.start_worker("request-cost-worker")
    session = h.browser_sessions(1)[0]
    run_id = h.submit_form(session, data)
    h.wait_final([run_id], timeout=60)
    worker.stop()
    measured = pages(run_id)
    for _name, url, headers in measured:
        for _ in range(20):  # warm, once: every web process's caches and compiled queries, the connection
            session.get(url, headers=headers, timeout=30)
    results = {name: [] for name, _, _ in measured}
    for _ in range(reps):
        for name, url, headers in measured:
            results[name].append(measure(session, web, url, headers, count))
    medians = {
        name: {key: h.median([r[key] for r in reps_of]) for key in ("gunicorn_ms", "postgres_ms")}
        for name, reps_of in results.items()
    }
    rows = [[name, f"{m['gunicorn_ms']:.2f}", f"{m['postgres_ms']:.2f}"] for name, m in medians.items()]
    print(f"CPU per request, one browser, {count} requests each, median of {reps}:")
    print(h.table(["page", "CPU ms gunicorn", "CPU ms PostgreSQL"], rows))
    bench.save({"requests": count, "reps": reps, "per_request": medians, "repetitions": results})


if __name__ == "__main__":
    main()
