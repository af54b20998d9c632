"""Figure 1: the signed-in catalog page (100 visible actions) under load, against a bare signed-in
"hello" view served by the same gunicorn (README's production command), with wrk.

    .venv/bin/python bench/catalog_load.py [--duration 10] [--connections 32] [--reps 6]

Each repetition loads hello and the catalog, `duration` seconds each with `connections` connections,
in alternating order (hello first, then catalog first, ...); the figure is the median over
repetitions of catalog req/s ÷ hello req/s (target >= 0.5). Several short pairs rather than a few
long ones: on a shared machine, other load then falls on both members of a pair alike.
"""

import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import harness as h

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def wrk(url: str, cookie: str, *, connections: int, duration: int, web_pid: int | None = None) -> dict:
    argv = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "--latency", "--timeout", "10s"]
    argv += ["-H", f"Cookie: {cookie}", url]
    server = (lambda: h.cpu_seconds(h.process_tree(web_pid)), lambda: h.cpu_seconds(h.pids_named("postgres")))
    before = [f() for f in server] if web_pid else None
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60).stdout
    after = [f() for f in server] if web_pid else None

    def latency(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        return float(match.group(1)) * UNITS[match.group(2)] if match else float("nan")

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if not rps:
        h.fail(f"could not read wrk's output:\n{out}")
    requests = int(total.group(1)) if total else 0
    cpu = {}
    if web_pid and requests:  # CPU per request: less sensitive than req/s to other load on the machine
        cpu = {
            "cpu_ms_gunicorn": (after[0] - before[0]) * 1000 / requests,
            "cpu_ms_postgres": (after[1] - before[1]) * 1000 / requests,
        }
    return cpu | {
        "rps": float(rps.group(1)),
        "requests": requests,
        "p50_ms": latency("50"),
        "p90_ms": latency("90"),
        "p99_ms": latency("99"),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
    }


def in_process_profile(user) -> dict:
    """Queries and single-threaded time per page, in this process (no HTTP): what each page costs."""
    from django.db import connection
    from django.test import Client

    client = Client()
    client.force_login(user)
    out = {}
    for name, path in (("hello", "/bench/hello"), ("catalog", "/")):
        client.get(path, HTTP_HOST="127.0.0.1")
        queries = []

        def record(execute, sql, params, many, context, queries=queries):
            queries.append(sql[:300])
            return execute(sql, params, many, context)

        with connection.execute_wrapper(record):
            response = client.get(path, HTTP_HOST="127.0.0.1")
        assert response.status_code == 200, (path, response.status_code)
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(200):
            client.get(path, HTTP_HOST="127.0.0.1")
        out[name] = {
            "queries": len(queries),
            "ms_per_request": (time.perf_counter() - started) * 5,
            "cpu_ms_per_request": (time.process_time() - cpu) * 5,
            "bytes": len(response.content),
            "sql": queries,
        }
    return out


def main() -> None:
    duration = h.arg_int("duration", 10)
    connections = h.arg_int("connections", 32)
    reps = h.arg_int("reps", 6)
    bench = h.Bench("catalog", web=True)
    wrk_version = h.ensure_wrk()
    data = h.seed(bench, visible=100)
    profile = in_process_profile(data["user"])
    web = bench.start_web()
    session = h.login()
    # What a signed-in browser sends back: the session and the CSRF cookie (without the latter the
    # catalog would set a new CSRF cookie on every response).
    cookie = f"sessionid={session.cookies['sessionid']}; csrftoken={session.cookies['csrftoken']}"
    page = session.get(h.WEB_URL + "/", timeout=10)
    cards = page.text.count('class="card action-card"')
    hello = session.get(h.WEB_URL + "/bench/hello", timeout=10)
    if page.status_code != 200 or cards != 100 or hello.text != f"hello {h.USERNAME}":
        h.fail(f"unexpected pages: catalog {page.status_code} with {cards} actions, hello {hello.text[:80]!r}")
    urls = {"hello": h.WEB_URL + "/bench/hello", "catalog": h.WEB_URL + "/"}
    h.log(f"warming up; then {reps} x (hello, catalog), {duration} s each at {connections} connections")
    for url in urls.values():
        wrk(url, cookie, connections=connections, duration=3)
    runs = []
    for rep in range(1, reps + 1):
        # hello, catalog, then catalog, hello, ...: a drift in the machine's other load falls on both.
        order = list(urls.items()) if rep % 2 else list(urls.items())[::-1]
        pair = {
            name: wrk(url, cookie, connections=connections, duration=duration, web_pid=web.pid) for name, url in order
        }
        pair["ratio"] = pair["catalog"]["rps"] / pair["hello"]["rps"]
        cpu = {name: pair[name]["cpu_ms_gunicorn"] + pair[name]["cpu_ms_postgres"] for name in urls}
        pair["cpu_ratio"] = cpu["hello"] / cpu["catalog"]
        runs.append(pair)
        h.log(
            f"rep {rep}: hello {pair['hello']['rps']:.0f} req/s, catalog {pair['catalog']['rps']:.0f} req/s, "
            f"ratio {pair['ratio']:.2f}"
        )
    keys = ("rps", "p50_ms", "p90_ms", "p99_ms", "cpu_ms_gunicorn", "cpu_ms_postgres")
    summary = {name: {key: h.median([r[name][key] for r in runs]) for key in keys} for name in urls}
    summary["ratio"] = h.median([r["ratio"] for r in runs])
    summary["cpu_ratio"] = h.median([r["cpu_ratio"] for r in runs])
    summary["errors"] = sum(r[n]["non_2xx"] + r[n]["socket_errors"] for r in runs for n in urls)
    summary["target_met"] = summary["ratio"] >= 0.5 and summary["errors"] == 0
    print()
    print(f"Figure 1: catalog page vs bare hello view, gunicorn 4 workers x 4 threads, wrk -t2 -c{connections}")
    print(f"median of {reps} repetitions of {duration} s each\n")
    rows = [
        [
            name,
            summary[name]["rps"],
            summary[name]["p50_ms"],
            summary[name]["p99_ms"],
            summary[name]["cpu_ms_gunicorn"],
            summary[name]["cpu_ms_postgres"],
            profile[name]["queries"],
        ]
        for name in urls
    ]
    headers = ["page", "req/s", "p50 ms", "p99 ms", "CPU ms/req gunicorn", "CPU ms/req PostgreSQL", "SQL queries"]
    print(h.table(headers, rows))
    print(
        f"\ncatalog ÷ hello throughput: {summary['ratio']:.2f} (target >= 0.50: "
        f"{'met' if summary['target_met'] else 'NOT met'}); errors: {summary['errors']}"
    )
    print(f"hello ÷ catalog CPU per request (gunicorn + PostgreSQL): {summary['cpu_ratio']:.2f}")
    bench.save(
        {
            "settings": {"duration_s": duration, "connections": connections, "reps": reps, "wrk": wrk_version},
            "gunicorn": "portal.wsgi --workers 4 --threads 4 --access-logfile -",
            "visible_actions": cards,
            "profile": profile,
            "runs": runs,
            "summary": summary,
        }
    )


if __name__ == "__main__":
    main()
