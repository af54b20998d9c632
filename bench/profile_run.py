"""Where one run's CPU goes, request by request, in this process: a profile of each step.

    .venv/bin/python bench/profile_run.py [--runs 200] [--top 35] [--step NAME] [--sort tottime|cumulative]
        [--show-queries]

The storm's run (bench/storm.py) step by step, through Django's WSGI handler as gunicorn calls it (no
test client): the action page, the form POST, the run page, a status poll while the run waits, the
`dispatch_run` task's body and the status poll once final (e-mail on, to
files). Each employee has a session and a device of their own, as in the storm. For each step: SQL
queries, CPU ms of this process per call (`process_time`), then cProfile's top functions for each
step (or only `--step`); then the reaper's e-mail pass, which runs every few seconds, not per run.
PostgreSQL, Redis and the simulator as every bench script.
"""

import cProfile
import io
import pstats
import secrets
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import os

from bench import harness as h

SHOW_QUERIES = "--show-queries" in sys.argv  # each step's SQL, once
# Per run. The e-mail is the reaper's pass, every few seconds whatever the runs: measured apart, after.
STEPS = ("action page", "form POST", "run page", "poll, waiting", "dispatch task", "poll, final")


def arg_str(name: str, default: str) -> str:
    flag = f"--{name}"
    return sys.argv[sys.argv.index(flag) + 1] if flag in sys.argv else default


class Browser:
    """One employee's cookies, through the WSGI application as gunicorn calls it."""

    def __init__(self, app, session_key: str):
        self.app = app
        self.cookies = {"sessionid": session_key}

    def request(self, method: str, path: str, *, data: dict | None = None, headers: dict | None = None):
        body = urlencode(data or {}).encode()
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(h.WEB_PORT),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": f"127.0.0.1:{h.WEB_PORT}",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "HTTP_COOKIE": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
        }
        if method == "POST":
            environ |= {"CONTENT_TYPE": "application/x-www-form-urlencoded", "CONTENT_LENGTH": str(len(body))}
        for name, value in (headers or {}).items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        answer = {}

        def start_response(status, response_headers, exc_info=None):
            answer["status"] = int(status.split()[0])
            answer["headers"] = response_headers

        chunks = self.app(environ, start_response)
        content = b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
        for name, value in answer["headers"]:
            if name.lower() == "set-cookie":
                cookie = SimpleCookie(value)
                for key, morsel in cookie.items():
                    self.cookies[key] = morsel.value
        answer["content"] = content
        answer["location"] = dict(answer["headers"]).get("Location", "")
        return answer


def main() -> None:
    os.environ["DEVICE_RESOLVERS"] = "directory"
    runs = h.arg_int("runs", 200)
    top = h.arg_int("top", 35)
    only = arg_str("step", "")
    sort = arg_str("sort", "tottime")
    import tempfile

    mail_dir = Path(tempfile.mkdtemp(prefix="portal-profile-mail-"))
    os.environ |= {"EMAIL_URL": f"filemail://{mail_dir}", "PORTAL_BASE_URL": h.WEB_URL}
    bench = h.Bench("profile_run", web=True)
    data = h.seed(bench)
    sys.path.insert(0, str(h.ROOT / "bench"))
    from storm import seed_storm

    employees = seed_storm(data, 2 * runs + 20)
    bench.start_simulator()
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from actions.runs.notify import runs_notify
    from actions.tasks import dispatch_run

    if "default" not in settings.MAILERS:
        h.fail("no mailer: EMAIL_URL was not read (settings were loaded before it was set)")
    app = get_wsgi_application()
    profiles = {step: cProfile.Profile(time.process_time) for step in STEPS}
    totals = {step: {"cpu": 0.0, "queries": 0, "count": 0} for step in STEPS}

    def measure(mode, step, call, *args, **kwargs):
        """mode: "warm" (nothing kept), "cpu" (queries and CPU kept) or "profile" (cProfile only)."""
        if mode == "warm":
            return call(*args, **kwargs)
        if mode == "profile":
            return profiles[step].runcall(call, *args, **kwargs)
        connection.queries_log.clear()
        started = time.process_time()
        with CaptureQueriesContext(connection) as queries:
            result = call(*args, **kwargs)
        totals[step]["cpu"] += time.process_time() - started
        if SHOW_QUERIES and not totals[step]["count"]:
            print(f"-- {step}: {len(queries.captured_queries)} queries")
            for query in queries.captured_queries:
                print("   ", query["sql"][:200])
        totals[step]["queries"] += len(queries.captured_queries)
        totals[step]["count"] += 1
        return result

    action_path = f"/actions/{h.DISPATCH_SLUG}/"
    json_headers = {"Accept": "application/json"}

    def one(employee, mode: str) -> None:
        browser = Browser(app, employee["session"])
        page = measure(mode, "action page", browser.request, "GET", action_path)
        assert page["status"] == 200, page["status"]
        form = {
            "device": employee["device"],
            "idempotency_key": secrets.token_urlsafe(24),
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
        }
        referer = {"Referer": f"http://127.0.0.1:{h.WEB_PORT}{action_path}"}
        posted = measure(mode, "form POST", browser.request, "POST", action_path, data=form, headers=referer)
        assert posted["status"] == 302, (posted["status"], posted["content"][:2000])
        run_path = posted["location"]
        run_id = run_path.rstrip("/").rsplit("/", 1)[-1]
        assert measure(mode, "run page", browser.request, "GET", run_path)["status"] == 200
        poll = run_path + "status.json"
        assert measure(mode, "poll, waiting", browser.request, "GET", poll, headers=json_headers)["status"] == 200
        measure(mode, "dispatch task", dispatch_run.run, run_id)
        assert measure(mode, "poll, final", browser.request, "GET", poll, headers=json_headers)["status"] == 200

    for employee in employees[:20]:
        one(employee, "warm")  # caches, compiled queries, connections
    for employee in employees[20 : 20 + runs]:
        one(employee, "cpu")
    cpu_rows = [
        [step, f"{t['queries'] / t['count']:.1f}", f"{t['cpu'] * 1000 / t['count']:.2f}"] for step, t in totals.items()
    ]
    print(f"In this process, {runs} runs, per call (profiling off):")
    print(h.table(["step", "SQL queries", "CPU ms"], cpu_rows))
    print(f"total CPU ms per run: {sum(t['cpu'] for t in totals.values()) * 1000 / runs:.2f}")
    started = time.process_time()
    for _ in range(runs):
        runs_notify()
    print(
        f"the reaper's e-mail pass (every few seconds; every page showed its end): {(time.process_time() - started) * 1000 / runs:.2f} ms"
    )
    if top:
        for employee in employees[20 + runs :]:
            one(employee, "profile")
        for step in STEPS:
            if only and step != only:
                continue
            out = io.StringIO()
            pstats.Stats(profiles[step], stream=out).sort_stats(sort).print_stats(top)
            print(f"\n===== {step} =====")
            print(out.getvalue())


if __name__ == "__main__":
    main()
