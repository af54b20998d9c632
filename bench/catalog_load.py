"""Figure 1: the signed-in catalog page (1,000 visible actions) under load, against a bare signed-in
"hello" view served by the same gunicorn (README's production command), with wrk.

    .venv/bin/python bench/catalog_load.py [--actions 1000] [--employees 200] [--duration 10]
                                           [--connections 32] [--reps 6] [--extra-reps 4]

Three loads, each a series of pairs (hello, catalog) of `duration` seconds with `connections`
connections, in alternating order (hello first, then catalog first, ...); each figure is the median
over its pairs of catalog req/s ÷ hello req/s (target >= 0.5 for the first):

1. warm: one employee (`--actions` visible actions) and their one session, `--reps` pairs;
2. many: `--employees` employees, each in another combination of groups (another visible set, so
   other cards and another cache key), wrk picking one of their sessions at random per request
   (a Lua script), `--extra-reps` pairs; hello is loaded with the same sessions;
3. cold: the first employee again, with gunicorn restarted so that the caches keep nothing
   (BENCH_COLD_CARDS=1, bench/settings.py): every view reads the first page's rows and renders its
   cards, `--extra-reps` pairs.

Several short pairs rather than a few long ones: on a shared machine, other load then falls on both
members of a pair alike. `--actions 100` measures the small catalog.
"""

import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import harness as h

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}
CARD = 'class="card action-card"'


def wrk(
    url: str,
    *,
    cookie: str = "",
    script: Path | None = None,
    connections: int,
    duration: int,
    web_pid: int | None = None,
) -> dict:
    argv = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "--latency", "--timeout", "10s"]
    argv += ["-s", str(script)] if script else ["-H", f"Cookie: {cookie}"]
    argv.append(url)
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


def cookie_script(bench: h.Bench, cookies: list[str]) -> Path:
    """A wrk Lua script sending each request with one of `cookies`, picked at random (per thread)."""
    lines = ",\n".join(f'  "{c}"' for c in cookies)
    path = bench.var_dir / "cookies.lua"
    path.write_text(
        f"local cookies = {{\n{lines}\n}}\n"
        "local threads = 0\n"
        'function setup(thread)\n  threads = threads + 1\n  thread:set("id", threads)\nend\n'
        "function init(args)\n  math.randomseed(os.time() * 100 + id)\nend\n"
        "function request()\n"
        '  return wrk.format("GET", nil, {["Cookie"] = cookies[math.random(#cookies)]})\n'
        "end\n"
    )
    return path


def employee_cookies(users) -> list[str]:
    """A session for each employee (force_login: no password hashing) and a CSRF cookie, as a browser
    sends them back (without the latter every response would set a new one)."""
    from django.conf import settings
    from django.middleware.csrf import _get_new_csrf_string
    from django.test import Client

    cookies = []
    for user in users:
        client = Client()
        client.force_login(user)
        session = client.cookies[settings.SESSION_COOKIE_NAME].value
        cookies.append(
            f"{settings.SESSION_COOKIE_NAME}={session}; {settings.CSRF_COOKIE_NAME}={_get_new_csrf_string()}"
        )
    return cookies


def in_process_profile(user, pages: dict[str, str]) -> dict:
    """Queries and single-threaded time per page, in this process (no HTTP): what each page costs.
    "catalog (cold)" is the catalog with the cache emptied before every view."""
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client

    client = Client()
    client.force_login(user)
    out = {}
    for name, path in (*pages.items(), ("catalog (cold)", pages["catalog"])):
        cold = name.endswith("(cold)")
        client.get(path, HTTP_HOST="127.0.0.1")
        queries = []

        def record(execute, sql, params, many, context, queries=queries):
            queries.append(sql[:300])
            return execute(sql, params, many, context)

        with connection.execute_wrapper(record):
            response = client.get(path, HTTP_HOST="127.0.0.1")
        assert response.status_code == 200, (path, response.status_code)
        n = 50 if cold else 200
        elapsed = cpu = 0.0
        for _ in range(n):
            if cold:
                cache.clear()
            started, cpu_started = time.perf_counter(), time.process_time()
            client.get(path, HTTP_HOST="127.0.0.1")
            elapsed += time.perf_counter() - started
            cpu += time.process_time() - cpu_started
        out[name] = {
            "path": path,
            "queries": len(queries),
            "ms_per_request": elapsed * 1000 / n,
            "cpu_ms_per_request": cpu * 1000 / n,
            "bytes": len(response.content),
            "cards": response.content.decode().count(CARD),
            "sql": queries,
        }
    return out


def pairs(label: str, urls: dict, *, reps: int, duration: int, connections: int, web_pid: int, **auth) -> dict:
    """`reps` pairs (hello, catalog) in alternating order; the per-pair figures and their medians."""
    h.log(f"{label}: warming up; then {reps} x (hello, catalog), {duration} s each at {connections} connections")
    for url in urls.values():
        wrk(url, connections=connections, duration=3, **auth)
    runs = []
    for rep in range(1, reps + 1):
        # hello, catalog, then catalog, hello, ...: a drift in the machine's other load falls on both.
        order = list(urls.items()) if rep % 2 else list(urls.items())[::-1]
        pair = {
            name: wrk(url, connections=connections, duration=duration, web_pid=web_pid, **auth) for name, url in order
        }
        pair["ratio"] = pair["catalog"]["rps"] / pair["hello"]["rps"]
        cpu = {name: pair[name]["cpu_ms_gunicorn"] + pair[name]["cpu_ms_postgres"] for name in urls}
        pair["cpu_ratio"] = cpu["hello"] / cpu["catalog"]
        runs.append(pair)
        h.log(
            f"{label} rep {rep}: hello {pair['hello']['rps']:.0f} req/s, catalog {pair['catalog']['rps']:.0f} req/s, "
            f"ratio {pair['ratio']:.2f}"
        )
    keys = ("rps", "p50_ms", "p90_ms", "p99_ms", "cpu_ms_gunicorn", "cpu_ms_postgres")
    summary = {name: {key: h.median([r[name][key] for r in runs]) for key in keys} for name in urls}
    summary["ratio"] = h.median([r["ratio"] for r in runs])
    summary["ratios"] = [round(r["ratio"], 3) for r in runs]
    summary["cpu_ratio"] = h.median([r["cpu_ratio"] for r in runs])
    summary["errors"] = sum(r[n]["non_2xx"] + r[n]["socket_errors"] for r in runs for n in urls)
    return {"runs": runs, "summary": summary}


def main() -> None:
    actions = h.arg_int("actions", 1000)
    employees = h.arg_int("employees", 200)
    duration = h.arg_int("duration", 10)
    connections = h.arg_int("connections", 32)
    reps = h.arg_int("reps", 6)
    extra_reps = h.arg_int("extra-reps", 4)
    bench = h.Bench("catalog", web=True)
    wrk_version = h.ensure_wrk()
    data = h.seed(bench, visible=actions, employees=employees)

    from actions.catalog.selectors import actions_visible_to

    if actions_visible_to(data["user"]).count() != actions:
        h.fail(f"the employee does not see exactly {actions} actions")
    visible_sets = {frozenset(actions_visible_to(u).values_list("pk", flat=True)) for u in data["employees"]}
    profile = in_process_profile(data["user"], {"hello": "/bench/hello", "catalog": "/"})
    web = bench.start_web()
    session = h.login()
    # What a signed-in browser sends back: the session and the CSRF cookie (without the latter the
    # catalog would set a new CSRF cookie on every response).
    cookie = f"sessionid={session.cookies['sessionid']}; csrftoken={session.cookies['csrftoken']}"
    page = session.get(h.WEB_URL + "/", timeout=10)
    cards = page.text.count(CARD)
    hello = session.get(h.WEB_URL + "/bench/hello", timeout=10)
    if page.status_code != 200 or not cards or hello.text != f"hello {h.USERNAME}":
        h.fail(f"unexpected pages: catalog {page.status_code} with {cards} actions, hello {hello.text[:80]!r}")
    urls = {"hello": h.WEB_URL + "/bench/hello", "catalog": h.WEB_URL + "/"}
    load = {"duration": duration, "connections": connections}
    results = {"warm": pairs("warm", urls, reps=reps, web_pid=web.pid, cookie=cookie, **load)}

    cookies = employee_cookies(data["employees"])
    import requests

    sizes = []
    for sample in cookies[:: max(1, len(cookies) // 20)]:  # about 20 of them: signed in, their own CSRF cookie kept
        response = requests.get(urls["catalog"], headers={"Cookie": sample}, allow_redirects=False, timeout=10)
        sent = dict(part.split("=", 1) for part in sample.split("; "))
        if response.status_code != 200 or response.cookies.get("csrftoken", sent["csrftoken"]) != sent["csrftoken"]:
            h.fail(f"an employee's catalog answered {response.status_code} with cookies {dict(response.cookies)}")
        sizes.append(len(response.content))
    if cookies:
        script = cookie_script(bench, cookies)
        results["many"] = pairs("many", urls, reps=extra_reps, web_pid=web.pid, script=script, **load)

    web.stop()
    web = bench.start_web(env={"BENCH_COLD_CARDS": "1"})
    results["cold"] = pairs("cold", urls, reps=extra_reps, web_pid=web.pid, cookie=cookie, **load)

    summary = results["warm"]["summary"] | {
        name: results[name]["summary"] for name in ("many", "cold") if name in results
    }
    summary["target_met"] = summary["ratio"] >= 0.5 and summary["errors"] == 0
    pages = {
        "catalog_bytes": len(page.content),
        "catalog_cards": cards,
        "many_bytes_median": h.median(sizes),
        "many_bytes_min": min(sizes, default=0),
        "many_bytes_max": max(sizes, default=0),
    }
    print()
    print(f"Figure 1: catalog page vs bare hello view, gunicorn 4 workers x 4 threads, wrk -t2 -c{connections}")
    print(f"{actions} visible actions; median of pairs of {duration} s each\n")
    rows = []
    for name, title in (("warm", "one employee"), ("many", f"{employees} employees"), ("cold", "cold cards")):
        if name not in results:
            continue
        s = results[name]["summary"]
        size = pages["catalog_bytes"] if name != "many" else pages["many_bytes_median"]
        for page_name in urls:
            rows.append(
                [
                    f"{title} ({len(results[name]['runs'])} pairs)",
                    page_name,
                    s[page_name]["rps"],
                    s[page_name]["p50_ms"],
                    s[page_name]["p99_ms"],
                    s[page_name]["cpu_ms_gunicorn"],
                    s[page_name]["cpu_ms_postgres"],
                    f"{s['ratio']:.2f}" if page_name == "catalog" else "",
                    f"{size / 1000:.1f}" if page_name == "catalog" else "",
                ]
            )
    headers = ["load", "page", "req/s", "p50 ms", "p99 ms", "CPU ms/req gunicorn", "CPU ms/req PG", "ratio", "kB"]
    print(h.table(headers, rows))
    print(
        f"\nwarm catalog ÷ hello throughput: {summary['ratio']:.2f} (target >= 0.50: "
        f"{'met' if summary['target_met'] else 'NOT met'}); errors: {summary['errors']}"
    )
    print(f"first page: {cards} action cards, {len(page.content) / 1000:.1f} kB; {len(visible_sets)} visible sets")
    for name, p in profile.items():
        print(
            f"in-process {name}: {p['queries']} queries, {p['ms_per_request']:.2f} ms, "
            f"{p['cpu_ms_per_request']:.2f} ms CPU, {p['bytes'] / 1000:.1f} kB"
        )
    bench.save(
        {
            "settings": {
                "actions": actions,
                "employees": employees,
                "duration_s": duration,
                "connections": connections,
                "reps": reps,
                "extra_reps": extra_reps,
                "wrk": wrk_version,
            },
            "gunicorn": "portal.wsgi --workers 4 --threads 4 --access-logfile -",
            "visible_actions": actions,
            "visible_sets": len(visible_sets),
            "pages": pages,
            "profile": profile,
            "runs": results["warm"]["runs"],
            "extra_runs": {name: results[name]["runs"] for name in ("many", "cold") if name in results},
            "summary": summary,
        }
    )


if __name__ == "__main__":
    main()
