"""The Monday-morning storm: N employees run the same fix within T minutes and watch their run page.

    .venv/bin/python bench/storm.py [--employees 2000] [--minutes 2] [--sim-seconds 2] [--sim-sigma 0.3]
        [--sim-cap 200] [--clients 400] [--watchers 100] [--watch-seconds 60] [--checkout DIR]
        [--label NAME] [--page-script FILE] [--web-port P] [--sim-port P] [--database-url URL] [--redis-url URL]

Through the real processes (gunicorn and one Celery worker as README's production commands, e-mail on
as files, PostgreSQL, Redis, the Act API simulator on loopback), two phases:

1. The storm. `employees` employees, each signed in with a session of their own and a device of
   their own, arrive at random within `minutes`: each opens the action page, submits the form, loads
   the run page the POST sends them to and polls its status JSON as static/js/run-status.js does (its
   first wait from the page, then 1 s x1.3 up to 5 s, or 15 s once the status has not changed for
   30 s where the script says so, the ETag sent back as If-None-Match when the portal gives one)
   until the run is final. The simulator answers each call in about `sim-seconds`
   (the median of a log-normal spread, `sim-sigma`), at most `sim-cap` calls at once.
   Reported: submit (form POST) p50/p95/p99; submit to the page showing the outcome p50/p95/p99
   (against the simulator's own time); portal CPU per run (gunicorn and the worker, all their
   requests and polls, from /proc), PostgreSQL's and Redis' too; requests per run; errors; the
   peak 1-s CPU share of each part and the peak of requests under way (gunicorn has 16 threads):
   what saturates first.
2. The steady state of an open run page. `watchers` employees submit a run that Nexthink holds
   (each call takes 10 minutes) and keep its page open; over `watch-seconds` once every page polls at
   its slowest pace, the portal's CPU per open page per minute.

`--checkout DIR` runs gunicorn and the worker from another checkout of the portal (e.g. main's, with
`git worktree add ../wt-storm-before main`): the "before" figures, with everything else (seed,
simulator, this client) the same. Bounded: each phase stops by itself (the storm `minutes` + 2 min at
most). Results: var/bench/storm[-LABEL].json. Ports, database and Redis: the flags, or as every
bench script, BENCH_WEB_PORT, BENCH_SIM_PORT, BENCH_DATABASE_URL, BENCH_REDIS_URL.
"""

import os
import random
import re
import secrets
import sys
import threading
import time
from pathlib import Path

if "--help" in sys.argv or "-h" in sys.argv:
    print(__doc__)
    sys.exit(0)
for _flag, _variable in (
    ("--web-port", "BENCH_WEB_PORT"),
    ("--sim-port", "BENCH_SIM_PORT"),
    ("--database-url", "BENCH_DATABASE_URL"),
    ("--redis-url", "BENCH_REDIS_URL"),
):
    if _flag in sys.argv:
        os.environ[_variable] = sys.argv[sys.argv.index(_flag) + 1]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import harness as h

SLOW_AFTER_SECONDS = 30  # the page's script: a status unchanged this long, looks every 15 s at most
STRAGGLER_SECONDS = 120  # after the last arrival, the storm waits at most this long for its runs
WATCH_RUN_SECONDS = 600  # a watched run's call to Nexthink: longer than the watch
WATCH_SETTLE_SECONDS = 45  # the page's polls reach their slowest pace by then (15 s after 30 s unchanged)
SLOWS_DOWN = False


def arg_str(name: str, default: str) -> str:
    flag = f"--{name}"
    return sys.argv[sys.argv.index(flag) + 1] if flag in sys.argv else default


# --- Seed: employees, devices, sessions -------------------------------------------------------------
def seed_storm(data: dict, count: int) -> list[dict]:
    """`count` employees with a device and a signed-in session each (written straight to the tables)."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User
    from django.contrib.sessions.models import Session
    from django.db import transaction
    from django.utils import timezone

    from actions.models import Device

    engine = data["device"].engine
    store = import_module(settings.SESSION_ENGINE).SessionStore
    backend = "actions.accounts.backends.LocalLoginBackend"
    expires = timezone.now() + timezone.timedelta(hours=10)
    with transaction.atomic():
        User.objects.filter(username__startswith="bench-storm-").delete()
        users = User.objects.bulk_create(
            User(
                username=f"bench-storm-{k:05d}", email=f"bench-storm-{k:05d}@corp.example", password=make_password(None)
            )
            for k in range(count)
        )
        users = list(User.objects.filter(username__startswith="bench-storm-").order_by("username"))
        devices = Device.objects.bulk_create(
            Device(
                uid=secrets.token_hex(16), name=f"LAPTOP-S{k:05d}", owner=u, engine=engine, source=Device.Source.IMPORT
            )
            for k, u in enumerate(users)
        )
        employees, sessions = [], []
        for user, device in zip(users, devices, strict=True):
            key = secrets.token_hex(16)
            payload = {
                SESSION_KEY: str(user.pk),
                BACKEND_SESSION_KEY: backend,
                HASH_SESSION_KEY: user.get_session_auth_hash(),
            }
            sessions.append(Session(session_key=key, session_data=store().encode(payload), expire_date=expires))
            employees.append({"session": key, "device": device.uid})
        Session.objects.bulk_create(sessions)
    return employees


# --- One employee, as a browser --------------------------------------------------------------------
class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.submit, self.outcome, self.requests, self.polls, self.not_modified = [], [], [], [], 0
        self.errors: list[str] = []
        self.in_flight = self.peak_in_flight = 0
        self.start_lag: list[float] = []
        self.statuses: dict[str, int] = {}

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)

    def request(self, session, method: str, url: str, **kwargs):
        with self.lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return session.request(method, url, timeout=60, **kwargs)
        finally:
            with self.lock:
                self.in_flight -= 1


def browser(employee: dict):
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util import Retry

    session = requests.Session()
    # As a browser does (harness.login): a GET on a kept-alive connection closed by gunicorn is sent again once.
    retry = Retry(total=1, connect=1, read=1, status=0, other=0, allowed_methods=frozenset({"GET"}))
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.cookies.set("sessionid", employee["session"], domain="127.0.0.1", path="/")
    return session


def storm_run(tally: Tally, employee: dict, deadline: float, *, hold: bool = False) -> None:
    """The action page, the form POST, the run page, then the status JSON until final (or `deadline`).
    `hold`: the run is not expected to end before `deadline` (the watch phase)."""
    session = browser(employee)
    made = 0
    try:
        action_url = f"{h.WEB_URL}/actions/{h.DISPATCH_SLUG}/"
        page = tally.request(session, "GET", action_url)
        made += 1
        if page.status_code != 200:
            return tally.error(f"action page {page.status_code}")
        form = {
            "device": employee["device"],
            "idempotency_key": secrets.token_urlsafe(24),
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        }
        started = time.monotonic()
        answer = tally.request(
            session, "POST", action_url, data=form, headers={"Referer": action_url}, allow_redirects=False
        )
        submitted = time.monotonic() - started
        made += 1
        location = answer.headers.get("Location", "")
        if answer.status_code != 302 or "/runs/" not in location:
            return tally.error(f"form POST {answer.status_code} {location!r}")
        run_url = h.WEB_URL + location
        page = tally.request(session, "GET", run_url)
        made += 1
        if page.status_code != 200:
            return tally.error(f"run page {page.status_code}")
        final = 'data-final="true"' in page.text
        first = re.search(r'data-first-poll-ms="(\d+)"', page.text)
        wait, delay, tag, status, polls = (int(first.group(1)) / 1000 if first else 1.0), 1.0, None, "", 0
        changed_at = time.monotonic()
        while not final:
            if time.monotonic() + wait > deadline:
                break
            time.sleep(wait)
            headers = {"Accept": "application/json"} | ({"If-None-Match": tag} if tag else {})
            answer = tally.request(session, "GET", run_url + "status.json", headers=headers)
            made += 1
            polls += 1
            if answer.status_code == 304:
                with tally.lock:
                    tally.not_modified += 1
            elif answer.status_code == 200:
                tag = answer.headers.get("ETag")
                data = answer.json()
                if data["status"] != status:
                    changed_at = time.monotonic()
                status, final = data["status"], data["final"]
            else:
                return tally.error(f"status.json {answer.status_code}")
            slow = status == "following" or (SLOWS_DOWN and time.monotonic() - changed_at > SLOW_AFTER_SECONDS)
            delay = min(delay * 1.3, 15.0 if slow else 5.0)
            wait = delay
        if not final and not hold:
            return tally.error("not final in time")
        with tally.lock:
            tally.submit.append(submitted)
            tally.requests.append(made)
            tally.polls.append(polls)
            if not hold:
                tally.outcome.append(time.monotonic() - started)
                tally.statuses[status or "final at load"] = tally.statuses.get(status or "final at load", 0) + 1
    except Exception as exc:  # noqa: BLE001 - counted, reported
        tally.error(f"{type(exc).__name__}: {exc}"[:200])


def arrive(tally: Tally, employees: list[dict], seconds: float, clients: int, deadline: float, **options) -> None:
    """Each employee starts at a random moment within `seconds`; `clients` browsers at most at once."""
    from concurrent.futures import ThreadPoolExecutor

    chance = random.Random(7)
    moments = sorted(chance.uniform(0, seconds) for _ in employees)
    begin = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        for employee, moment in zip(employees, moments, strict=True):
            time.sleep(max(0.0, begin + moment - time.monotonic()))

            def go(employee=employee, due=begin + moment):
                with tally.lock:
                    tally.start_lag.append(time.monotonic() - due)
                storm_run(tally, employee, deadline, **options)

            pool.submit(go)


# --- Measuring -----------------------------------------------------------------------------------------
class Usage:
    """CPU seconds of the portal's processes, PostgreSQL's backends and Redis between start and stop,
    and the peak 1-s share of two cores of each, sampled in a thread."""

    def __init__(self, groups: dict):
        self.groups = groups
        self.peaks = dict.fromkeys([*groups, "postgres", "machine"], 0.0)
        self.loads: list[float] = []
        self._stop = threading.Event()

    def _read(self) -> dict[str, float]:
        values = {name: read() for name, read in self.groups.items()}
        values["postgres"] = self.postgres.seconds()
        values["machine"] = h.machine_cpu_seconds()
        return values

    def start(self) -> "Usage":
        self.postgres = h.BackendCpu()
        self.first = self._read()
        self.started = time.monotonic()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def _loop(self) -> None:
        cores = os.cpu_count() or 1
        last, at = self.first, time.monotonic()
        while not self._stop.wait(1.0):
            now, when = self._read(), time.monotonic()
            for name in self.peaks:
                self.peaks[name] = max(self.peaks[name], (now[name] - last[name]) / (when - at) / cores)
            self.loads.append(float(Path("/proc/loadavg").read_text().split()[0]))
            last, at = now, when

    def stop(self) -> dict:
        self._stop.set()
        self.thread.join()
        end = self._read()
        return {
            "seconds": time.monotonic() - self.started,
            "cpu": {name: end[name] - self.first[name] for name in end},
            "peak_share": self.peaks,
            "load_average_peak": max(self.loads, default=0.0),
            "load_average_mean": sum(self.loads) / len(self.loads) if self.loads else 0.0,
        }


def tolerate_older_code() -> None:
    """Give every NOT NULL column its field's default in the database, so that an older checkout's
    inserts (which leave out the columns it does not know yet) work on this checkout's schema."""
    import json

    from django.apps import apps
    from django.db import connection

    with connection.schema_editor() as editor:
        for model in apps.get_models():
            if model._meta.proxy or not model._meta.managed:
                continue
            for field in model._meta.concrete_fields:
                if field.null or field.primary_key or not (field.has_default() or field.empty_strings_allowed):
                    continue
                default = field.default() if field.has_default() and callable(field.default) else field.get_default()
                if isinstance(default, (dict, list)):
                    default = json.dumps(default)
                elif not isinstance(default, (str, int, bool)):
                    continue  # a stamp or a generated key: the older code writes those it has
                editor.execute(
                    f"ALTER TABLE {editor.quote_name(model._meta.db_table)} ALTER COLUMN"
                    f" {editor.quote_name(field.column)} SET DEFAULT {editor.quote_value(default)}"
                )


def start_portal(bench, checkout: Path | None):
    """gunicorn and one worker as README's production commands, from this checkout or `checkout`."""
    if checkout is None:
        return bench.start_web(), bench.start_worker("storm-worker")
    env = bench.env | {"PYTHONPATH": str(checkout)}
    root = h.ROOT
    h.ROOT = checkout  # Service starts its process in h.ROOT
    try:
        web = bench.start_web(env=env | {"PYTHONPATH": str(checkout)})
        ready = bench.var_dir / "storm-worker.ready"
        argv = [h.PYTHON, "-m", "celery", "-A", "portal", "worker", "--pool", "threads"]
        argv += ["--without-gossip", "--without-mingle", "--hostname", "storm-worker@%h"]
        worker = bench.start("storm-worker", argv, ready.exists, env=env | {"BENCH_READY_FILE": str(ready)})
    finally:
        h.ROOT = root
    return web, worker


def main() -> None:
    employees_n = h.arg_int("employees", 2000)
    minutes = h.arg_float("minutes", 2.0)
    sim_seconds = h.arg_float("sim-seconds", 2.0)
    sim_sigma = h.arg_float("sim-sigma", 0.3)
    sim_cap = h.arg_int("sim-cap", 200)
    clients = h.arg_int("clients", 400)
    watchers = h.arg_int("watchers", 100)
    watch_seconds = h.arg_float("watch-seconds", 60.0)
    label = arg_str("label", "")
    checkout = Path(arg_str("checkout", "")).resolve() if "--checkout" in sys.argv else None
    # The client polls as the checkout's page script does (or the one --page-script names).
    script = Path(arg_str("page-script", str((checkout or h.ROOT) / "static/js/run-status.js"))).read_text()
    global SLOWS_DOWN
    SLOWS_DOWN = "changedAt" in script  # looks every 15 s at most at a status unchanged for 30 s
    os.environ["DEVICE_RESOLVERS"] = "directory"  # the seeded devices: no NXQL per submit
    bench = h.Bench("storm" + (f"-{label}" if label else ""), web=True)
    mail_dir = bench.var_dir / "mail"
    bench.env |= {
        "DEVICE_RESOLVERS": "directory",
        "EMAIL_URL": f"filemail://{mail_dir}",  # e-mail on, as production runs it (to files here)
        "PORTAL_BASE_URL": h.WEB_URL,
        "RUN_MAX_IN_FLIGHT_PER_USER": "5",  # production's fair use: one run each here anyway
        "NEXTHINK_DEFAULT_TIMEOUT_SECONDS": "900",  # the watched runs' calls (10 min) stay in flight
    }
    data = h.seed(bench, dispatch_latency=sim_seconds)
    config = __import__("json").loads(bench.sim_config_path.read_text())
    config["max_concurrent"] = sim_cap
    for action in config["remote_actions"]:
        if action["latency_seconds"]:
            action["latency_sigma"] = sim_sigma
    bench.sim_config_path.write_text(__import__("json").dumps(config))
    h.log(f"seeding {employees_n + watchers} employees with a device and a session each")
    everyone = seed_storm(data, employees_n + watchers)
    stormers, watching = everyone[:employees_n], everyone[employees_n:]
    if checkout is not None:
        tolerate_older_code()
    bench.start_simulator()
    web, worker = start_portal(bench, checkout)
    groups = {
        "web": lambda: h.cpu_seconds(h.process_tree(web.pid)),
        "worker": lambda: h.cpu_seconds(h.process_tree(worker.pid)),
        "redis": lambda: h.cpu_seconds(h.pids_named("redis-server")),
        "client": time.process_time,  # this script's browsers: on this machine too
    }
    # Warm-up, not measured: a few runs, so that the action has the history the page's first wait follows.
    warm = Tally()
    arrive(warm, stormers[:10], 1.0, 10, time.monotonic() + 60)
    time.sleep(6)  # longer than a web process keeps "no finished runs yet"
    bench.sim("POST", "/_sim/reset")

    h.log(f"storm: {employees_n} employees within {minutes:g} min")
    tally = Tally()
    usage = Usage(groups).start()
    arrive(tally, stormers, minutes * 60, clients, time.monotonic() + minutes * 60 + STRAGGLER_SECONDS)
    time.sleep(1)  # the last tasks' acknowledgements
    used = usage.stop()
    runs = len(tally.outcome)
    sim = [e["answered_at"] - e["received_at"] for e in bench.sim("GET", "/_sim/requests") if e.get("answered_at")]
    cpu_per_run = {name: seconds * 1000 / max(runs, 1) for name, seconds in used["cpu"].items()}
    cpu_per_run["portal"] = cpu_per_run["web"] + cpu_per_run["worker"]
    storm = {
        "employees": employees_n,
        "minutes": minutes,
        "runs_seen_final": runs,
        "statuses": tally.statuses,
        "errors": len(tally.errors),
        "error_kinds": sorted(set(tally.errors))[:10],
        "submit_ms": {f"p{q}": h.pct(tally.submit, q) * 1000 for q in (50, 95, 99)},
        "outcome_s": {f"p{q}": h.pct(tally.outcome, q) for q in (50, 95, 99)},
        "simulator_s": {f"p{q}": h.pct(sim, q) for q in (50, 95, 99)},
        "requests_per_run": sum(tally.requests) / max(runs, 1),
        "polls_per_run": sum(tally.polls) / max(runs, 1),
        "not_modified_share": tally.not_modified / max(sum(tally.polls), 1),
        "cpu_ms_per_run": cpu_per_run,
        "peak_cpu_share_of_2_cores": used["peak_share"],
        "peak_requests_under_way": tally.peak_in_flight,
        "start_lag_p99_s": h.pct(tally.start_lag, 99),
        "load_average": {"mean": used["load_average_mean"], "peak": used["load_average_peak"]},
        "mails": len(list(mail_dir.glob("*"))) if mail_dir.exists() else 0,
    }
    print_storm(storm)

    h.log(f"steady state: {watchers} open run pages of runs Nexthink holds, {watch_seconds:g} s")
    bench.sim(
        "POST", "/_sim/faults", json={"fault": "latency", "action": "*", "times": 0, "seconds": WATCH_RUN_SECONDS}
    )
    watch = Tally()
    end = time.monotonic() + 5 + WATCH_SETTLE_SECONDS + watch_seconds + 5
    feeder = threading.Thread(target=arrive, args=(watch, watching, 5.0, watchers, end), kwargs={"hold": True})
    feeder.start()
    time.sleep(5 + WATCH_SETTLE_SECONDS)
    usage = Usage(groups).start()
    time.sleep(watch_seconds)
    used = usage.stop()
    feeder.join()
    per_page_minute = {name: s * 1000 / watchers / (used["seconds"] / 60) for name, s in used["cpu"].items()}
    per_page_minute["portal"] = per_page_minute["web"] + per_page_minute["worker"]
    steady = {
        "watchers": watchers,
        "seconds": used["seconds"],
        "cpu_ms_per_open_page_per_minute": per_page_minute,
        "not_modified_share": watch.not_modified / max(sum(watch.polls), 1),
        "errors": len(watch.errors),
        "error_kinds": sorted(set(watch.errors))[:10],
    }
    print_steady(steady)
    worker.stop(__import__("signal").SIGKILL)  # its threads wait on 10-minute calls
    bench.save({"checkout": str(checkout or h.ROOT), "storm": storm, "steady": steady, "sim_cap": sim_cap})


def print_storm(s: dict) -> None:
    cpu = s["cpu_ms_per_run"]
    print(f"\nStorm: {s['employees']} employees within {s['minutes']:g} min; {s['runs_seen_final']} runs seen final")
    print(
        h.table(
            ["", "p50", "p95", "p99"],
            [
                ["submit (form POST), ms", *s["submit_ms"].values()],
                ["submit to outcome on the page, s", *s["outcome_s"].values()],
                ["the simulator's call, s", *s["simulator_s"].values()],
            ],
        )
    )
    print(
        h.table(
            ["CPU ms per run", "web", "worker", "portal", "postgres", "redis", "client", "machine"],
            [["", *(cpu[k] for k in ("web", "worker", "portal", "postgres", "redis", "client", "machine"))]],
        )
    )
    peaks = s["peak_cpu_share_of_2_cores"]
    print(
        f"requests per run {s['requests_per_run']:.2f} (polls {s['polls_per_run']:.2f}, "
        f"{s['not_modified_share']:.0%} answered 304); errors {s['errors']} {s['error_kinds']}; statuses {s['statuses']}"
    )
    print(
        "peak 1-s CPU share of 2 cores: "
        + ", ".join(f"{k} {v:.0%}" for k, v in peaks.items())
        + f"; peak requests under way {s['peak_requests_under_way']} (gunicorn: 16 threads);"
        f" start lag p99 {s['start_lag_p99_s']:.2f} s; load average mean {s['load_average']['mean']:.1f},"
        f" peak {s['load_average']['peak']:.1f}; mails {s['mails']}"
    )


def print_steady(s: dict) -> None:
    cpu = s["cpu_ms_per_open_page_per_minute"]
    print(f"\nSteady state: {s['watchers']} open run pages over {s['seconds']:.0f} s")
    print(
        h.table(
            ["CPU ms per open page per minute", "web", "worker", "portal", "postgres", "redis", "client", "machine"],
            [["", *(cpu[k] for k in ("web", "worker", "portal", "postgres", "redis", "client", "machine"))]],
        )
    )
    print(f"{s['not_modified_share']:.0%} of polls answered 304; errors {s['errors']} {s['error_kinds']}")


if __name__ == "__main__":
    main()
