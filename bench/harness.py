"""What every bench script shares: the production-like environment, its processes, seed data,
statistics and the results file. Scripts import it before Django (it sets the environment).

Everything runs on loopback: PostgreSQL (database `bench`, created if missing), Redis (database 14,
flushed), the Act API simulator, gunicorn and Celery workers started from this checkout. Every
process a script starts is stopped when it ends (also on Ctrl-C), by its own process group.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PYTHON = sys.executable
RESULTS_DIR = ROOT / "var" / "bench"
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
SIM_PORT = int(os.environ.get("BENCH_SIM_PORT", "38765"))
WEB_PORT = int(os.environ.get("BENCH_WEB_PORT", "38000"))
SIM_URL = f"http://127.0.0.1:{SIM_PORT}"
WEB_URL = f"http://127.0.0.1:{WEB_PORT}"
USERNAME, PASSWORD = "bench-employee", "bench-employee-pass-42"
GROUPS = ("bench-field-staff", "bench-laptops", "bench-emea")
DISPATCH_SLUG = "bench-dispatch"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def fail(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


# --- Preconditions ------------------------------------------------------------------------------
def check_venv() -> None:
    try:
        import celery  # noqa: F401
        import django  # noqa: F401
        import gunicorn  # noqa: F401
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
        import redis  # noqa: F401
        import requests  # noqa: F401
    except ImportError as exc:
        fail(f"{exc.name} is missing: run bin/venv (it installs requirements.txt), then .venv/bin/python bench/...")


def ensure_postgres() -> str:
    """Create the bench database if needed; returns PostgreSQL's version."""
    import psycopg

    parts = urlsplit(DATABASE_URL)
    dbname = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone():
                conn.execute(f'CREATE DATABASE "{dbname}"')
                log(f"created PostgreSQL database {dbname}")
    except psycopg.OperationalError as exc:
        fail(f"PostgreSQL is not reachable at {admin} ({exc}). Start it, or set BENCH_DATABASE_URL.")
    return version


def pg_max_connections() -> int:
    import psycopg

    with psycopg.connect(DATABASE_URL, connect_timeout=3) as conn:
        return int(conn.execute("SHOW max_connections").fetchone()[0])


def ensure_redis() -> str:
    """Flush the bench's Redis database; returns Redis' version. Only call with no worker running."""
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        client.flushdb()
        return str(client.info("server")["redis_version"])
    except redis.RedisError as exc:
        fail(f"Redis is not reachable at {REDIS_URL} ({exc}). Start it, or set BENCH_REDIS_URL.")
    return ""


def ensure_wrk() -> str:
    if not shutil.which("wrk"):
        if os.geteuid() == 0 and shutil.which("apt-get"):
            log("installing wrk with apt-get")
            quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
            if subprocess.run(["apt-get", "install", "-y", "wrk"], **quiet).returncode != 0:
                subprocess.run(["apt-get", "update"], **quiet)
                subprocess.run(["apt-get", "install", "-y", "wrk"], **quiet)
        if not shutil.which("wrk"):
            fail("wrk is needed for the load test: apt-get install wrk (Debian/Ubuntu) or build it from source.")
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return (out.stdout + out.stderr).split("\n")[0].split(" Copyright")[0].strip()


def ports_free() -> None:
    import socket

    for port in (SIM_PORT, WEB_PORT):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                fail(
                    f"port {port} is already in use (another bench still running?). Set BENCH_SIM_PORT/BENCH_WEB_PORT."
                )


def machine_facts(pg_version: str, redis_version: str) -> dict:
    mem_kb = int(
        next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "",
    )
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": pg_version,
        "redis": redis_version,
        "commit": _git_head(),
    }


def _git_head() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    return out.stdout.strip() + ("+changes" if dirty.strip() else "")


# --- Environment and Django -----------------------------------------------------------------------
class Bench:
    """One bench script's run: its environment, Django in this process, the processes it starts."""

    def __init__(self, name: str, *, web: bool = False, embedded: bool = False):
        """`embedded`: the demo's set-up instead (SQLite file and filesystem broker in the temporary
        PORTAL_VAR_DIR, DEBUG on): no PostgreSQL, no Redis."""
        check_venv()
        ports_free()
        self.name = name
        self.embedded = embedded
        pg_version = "" if embedded else ensure_postgres()
        redis_version = "" if embedded else ensure_redis()
        self.facts = machine_facts(pg_version, redis_version)
        self.var_dir = Path(tempfile.mkdtemp(prefix=f"portal-bench-{name}-"))
        self.log_dir = RESULTS_DIR / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("NEXTHINK_", "NXQL_", "CELERY_", "RUN_"))},
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "HTTPS": "false",  # plain HTTP on loopback; production terminates TLS in front of gunicorn
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PORTAL_VAR_DIR": str(self.var_dir),
            "DATABASE_URL": DATABASE_URL,
            "CELERY_BROKER_URL": REDIS_URL,
            "NEXTHINK_PORTAL_URL": SIM_URL,
            "NEXTHINK_USERNAME": "portal",
            "NEXTHINK_PASSWORD": "portal-demo",
            # The simulators' app (its act_simulator command) is installed only with this or DEBUG.
            "NEXTHINK_SIMULATOR": "true",
            # NXQL asks the simulator's per-Engine endpoint: no traffic ever leaves loopback.
            "NXQL_URL_TEMPLATE": SIM_URL + "/_sim/engines/{database_uid}",
            "NXQL_USER_NAME_TEMPLATE": "CORP\\{username}",
            # A burst from one seeded employee measures the portal, not the fair-use limits.
            "RUN_MAX_IN_FLIGHT_PER_USER": "100000",
            "RUN_RATE_LIMIT_COUNT": "1000000",
        }
        if embedded:
            self.env |= {
                "DEBUG": "true",  # as bin/demo
                "DATABASE_URL": f"sqlite:///{self.var_dir / 'portal.sqlite3'}",
                "CELERY_BROKER_URL": "filesystem://",
            }
        os.environ.update(self.env)
        self.services: list[Service] = []
        atexit.register(self.stop_all)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

        import django

        django.setup()
        import logging

        logging.getLogger("actions").setLevel(logging.WARNING)  # this process's own run lines: not wanted here
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)
        if web:
            call_command("collectstatic", interactive=False, verbosity=0)
        from django.conf import settings

        self.settings = settings
        self.max_connections = 0 if embedded else pg_max_connections()
        self.sim_config_path = self.var_dir / "simulator.json"

    # --- processes ------------------------------------------------------------------------------
    def start(
        self, name: str, argv: list[str], ready: Callable[[], bool], *, env: dict | None = None, wait: bool = True
    ) -> Service:
        service = Service(name, argv, env or self.env, self.log_dir / f"{self.name}-{name}.log", ready)
        self.services.append(service)
        if wait:
            service.wait_ready()
        return service

    def start_simulator(self) -> Service:
        import requests

        def ready() -> bool:
            try:
                return requests.get(SIM_URL + "/_sim/health", timeout=1).ok
            except requests.RequestException:
                return False

        argv = [PYTHON, "manage.py", "act_simulator", "--port", str(SIM_PORT), "--config", str(self.sim_config_path)]
        return self.start("simulator", argv, ready)

    def start_web(self, env: dict | None = None) -> Service:
        """gunicorn exactly as README's production command, on a loopback port (`env`: more variables)."""
        import requests

        def ready() -> bool:
            try:
                return requests.get(WEB_URL + "/login/", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        argv = [PYTHON, "-m", "gunicorn", "portal.wsgi", "--bind", f"127.0.0.1:{WEB_PORT}"]
        argv += ["--workers", "4", "--threads", "4", "--access-logfile", "-"]
        return self.start("web", argv, ready, env=self.env | (env or {}))

    def start_worker(
        self, name: str, *, pool: str = "threads", concurrency: int | None = None, wait: bool = True
    ) -> Service:
        """`celery -A portal worker` as README's production command (pool and concurrency may vary)."""
        ready_file = self.var_dir / f"{name}.ready"
        ready_file.unlink(missing_ok=True)
        argv = [PYTHON, "-m", "celery", "-A", "portal", "worker", "--pool", pool]
        if concurrency:
            argv += ["--concurrency", str(concurrency)]
        argv += ["--without-gossip", "--without-mingle", "--hostname", f"{name}@%h"]
        env = self.env | {"BENCH_READY_FILE": str(ready_file)}
        return self.start(name, argv, ready_file.exists, env=env, wait=wait)

    def start_workers(self, names: list[str], **options) -> list[Service]:
        """Several workers started together; returns once every one is ready."""
        services = [self.start_worker(name, wait=False, **options) for name in names]
        for service in services:
            service.wait_ready()
        return services

    def stop_all(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.services.clear()
        shutil.rmtree(self.var_dir, ignore_errors=True)  # collected static files, simulator config

    # --- simulator ------------------------------------------------------------------------------
    def sim(self, method: str, path: str, **kwargs):
        import requests

        response = requests.request(method, SIM_URL + path, timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    # --- results --------------------------------------------------------------------------------
    def save(self, results: dict) -> Path:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path = RESULTS_DIR / f"{self.name}.json"
        path.write_text(json.dumps({"bench": self.name, "machine": self.facts} | results, indent=2, default=str))
        log(f"results written to {path.relative_to(ROOT)}")
        return path


class Service:
    """A process of ours in its own process group (so gunicorn's and prefork's children stop with it)."""

    def __init__(self, name: str, argv: list[str], env: dict, log_path: Path, ready: Callable[[], bool]):
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("w")
        self.ready = ready
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                fail(f"{self.name} did not start; its log, {self.log_path}:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        if not self._log.closed:
            self._log.close()


# --- Seed data ----------------------------------------------------------------------------------------
def seed(
    bench: Bench, *, visible: int = 100, hidden: int = 50, employees: int = 0, dispatch_latency: float = 0.0
) -> dict:
    """A catalog where the employee sees exactly `visible` actions among `visible + hidden + 1`.

    Visible: most for everyone, a third through one of the employee's groups, 10 featured whatever
    the size, in 6 categories and uncategorized. Hidden: disabled, or for one of 8 teams the employee
    is not in. Plus the action the dispatch benchmarks run (no parameters, no cooldown, no limit),
    visible too, counted in `visible`. `employees` more employees (`bench-many-NNN`, signed in with
    `Client.force_login`, no password) each in a different combination of the employee's 3 groups and
    the 8 teams: as many different visible sets. Writes the simulator's config (its actions, Engines
    on loopback) and returns what scripts need.
    """
    from django.contrib.auth.models import Group, User
    from django.db import connection, transaction

    from actions.models import Category, Device, Engine, RemoteAction
    from simulators import act_api as simulator

    config = simulator.load_config()
    for engine in config["engines"]:  # every Engine answers ok, and is on loopback
        engine.update({"address": "127.0.0.1", "answer": "ok", "message": ""})
    config["devices"] = []
    with transaction.atomic():
        truncate_runs()
        RemoteAction.objects.all().delete()
        Category.objects.all().delete()
        Device.objects.all().delete()
        Engine.objects.all().delete()
        User.objects.filter(username__startswith="bench-").delete()
        Group.objects.filter(name__startswith="bench-").delete()
        user = User.objects.create_user(USERNAME, f"{USERNAME}@corp.example", PASSWORD, first_name="Bench")
        groups = [Group.objects.create(name=name) for name in GROUPS]
        teams = [Group.objects.create(name=f"bench-team-{t}") for t in range(8)]
        user.groups.set(groups)
        engines = [
            Engine.objects.create(
                database_uid=e["databaseUID"], name=e["name"], address="127.0.0.1", port=e["port"], status="CONNECTED"
            )
            for e in config["engines"]
        ]
        device = Device.objects.create(
            uid=uuid.uuid4().hex, name="LAPTOP-BENCH", owner=user, engine=engines[0], source=Device.Source.IMPORT
        )
        categories = [Category.objects.create(name=f"Bench category {i}", display_order=i * 10) for i in range(6)]
        actions = []
        for i in range(visible + hidden):
            shown = i < visible - 1
            actions.append(
                RemoteAction(
                    name=f"Bench action {i:03d}",
                    slug=f"bench-action-{i:03d}",
                    summary=f"Fixes problem number {i} on your device in a minute or two.",
                    description="A remote action made up for the benchmarks. " * 3,
                    nexthink_uid=uuid.uuid4(),
                    enabled=shown or i % 2 == 0,
                    category=categories[i % 7] if i % 7 < 6 else None,
                    icon=RemoteAction.Icon.values[i % len(RemoteAction.Icon.values)],
                    display_order=i,
                    featured=shown and i % 10 == 0 and i < 100,
                )
            )
        actions.append(
            RemoteAction(
                name="Bench dispatch",
                slug=DISPATCH_SLUG,
                summary="The action the dispatch benchmarks run.",
                nexthink_uid=uuid.uuid4(),
                enabled=True,
                category=categories[0],
            )
        )
        RemoteAction.objects.bulk_create(actions)
        actions = {a.slug: a for a in RemoteAction.objects.all()}
        through = RemoteAction.groups.through
        links = []
        for i in range(visible + hidden):
            action = actions[f"bench-action-{i:03d}"]
            if i < visible - 1 and i % 3 == 0:  # visible through one of the employee's groups
                links.append(through(remoteaction_id=action.pk, group_id=groups[(i // 3) % 3].pk))
            elif i >= visible - 1 and i % 2 == 0:  # enabled, but for another team (odd ones are disabled)
                links.append(through(remoteaction_id=action.pk, group_id=teams[(i // 2) % len(teams)].pk))
        through.objects.bulk_create(links)
        many = seed_employees(employees, groups + teams)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    config["remote_actions"] = [
        {
            "uid": str(a.nexthink_uid),
            "name": a.name,
            "enabled": True,
            "manual": True,
            "latency_seconds": dispatch_latency if a.slug == DISPATCH_SLUG else 0,
        }
        for a in actions.values()
    ]
    bench.sim_config_path.write_text(json.dumps(config, indent=1))
    dispatch = actions[DISPATCH_SLUG]
    return {"user": user, "device": device, "dispatch_action": dispatch, "engines": len(engines), "employees": many}


def seed_employees(count: int, groups: list) -> list:
    """`count` employees, each in another non-empty combination of `groups` (no password: force_login)."""
    import random

    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User

    if count > 2 ** len(groups) - 1:
        fail(f"at most {2 ** len(groups) - 1} employees with {len(groups)} groups")
    masks = random.Random(42).sample(range(1, 2 ** len(groups)), count)
    users = User.objects.bulk_create(
        User(username=f"bench-many-{k:03d}", email=f"bench-many-{k:03d}@corp.example", password=make_password(None))
        for k in range(count)
    )
    users = list(User.objects.filter(username__startswith="bench-many-").order_by("username"))
    membership = User.groups.through
    membership.objects.bulk_create(
        membership(user_id=user.pk, group_id=group.pk)
        for user, mask in zip(users, masks, strict=True)
        for bit, group in enumerate(groups)
        if mask & (1 << bit)
    )
    return users


def truncate_runs() -> None:
    from django.db import connection

    from actions.models import EngineResult, Run, RunAttempt

    if connection.vendor != "postgresql":  # the embedded set-up's SQLite: a new file, or few runs
        for model in (EngineResult, RunAttempt, Run):
            model.objects.all().delete()
        return
    tables = ", ".join(m._meta.db_table for m in (EngineResult, RunAttempt, Run))
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} CASCADE")  # and what refers to runs (tickets)


def login(session=None):
    """A requests session signed in as the bench employee (session cookie reused from then on)."""
    import requests

    if session is None:
        from requests.adapters import HTTPAdapter
        from urllib3.util import Retry

        session = requests.Session()
        # As a browser does: a GET sent on a kept-alive connection that gunicorn closed at that
        # moment (its keep-alive is 2 s; the run page may wait longer between looks) is sent again
        # once on a new connection. Never a POST.
        retry = Retry(total=1, connect=1, read=1, status=0, other=0, allowed_methods=frozenset({"GET"}))
        session.mount("http://", HTTPAdapter(max_retries=retry))
    session.get(WEB_URL + "/login/", timeout=10).raise_for_status()
    token = session.cookies["csrftoken"]
    response = session.post(
        WEB_URL + "/login/",
        data={"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": token},
        allow_redirects=False,
        timeout=10,
    )
    if response.status_code != 302 or "sessionid" not in session.cookies:
        fail(f"could not sign in as {USERNAME}: HTTP {response.status_code}")
    return session


# --- Waiting on runs, reading times ---------------------------------------------------------------
def wait_final(run_ids: Iterable, *, timeout: float, poll: float = 0.05) -> tuple[int, int]:
    """Wait until every run is final (or `timeout`); returns (final, total)."""
    from actions.models import Run
    from actions.runs.states import FINAL

    ids = [str(i) for i in run_ids]
    deadline = time.monotonic() + timeout
    final = 0
    while time.monotonic() < deadline:
        final = Run.objects.filter(pk__in=ids, status__in=FINAL).count()
        if final == len(ids):
            break
        time.sleep(poll)
    return final, len(ids)


def run_times(run_ids: Iterable) -> dict[str, dict]:
    from actions.models import Run

    rows = Run.objects.filter(pk__in=[str(i) for i in run_ids]).values(
        "id", "status", "created_at", "sending_at", "finished_at", "attempts"
    )
    return {
        str(r["id"]): {
            "status": r["status"],
            "attempts": r["attempts"],
            **{k: r[k].timestamp() if r[k] else None for k in ("created_at", "sending_at", "finished_at")},
        }
        for r in rows
    }


def sim_times(bench: Bench) -> dict[str, dict]:
    """The simulator's received/answered times per run (requestUid is the run's id)."""
    out = {}
    for entry in bench.sim("GET", "/_sim/requests"):
        body = entry.get("body") or {}
        if body.get("requestUid"):
            out[body["requestUid"]] = {"received_at": entry["received_at"], "answered_at": entry.get("answered_at")}
    return out


# --- Process measurements -------------------------------------------------------------------------
def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pids: Iterable[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total / ticks


def database_backends(database: str = "") -> list[int]:
    """The PostgreSQL backends connected to the bench database (not other work on the same server)."""
    conn = _activity_connection()
    rows = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        [database or conn.info.dbname],
    ).fetchall()
    return [pid for (pid,) in rows]


@functools.cache
def _activity_connection():
    """One connection of the bench's own for reading pg_stat_activity (its backend is left out)."""
    import psycopg

    return psycopg.connect(DATABASE_URL.replace("postgres://", "postgresql://", 1), autocommit=True)


class BackendCpu:
    """CPU seconds the bench database's backends used between two readings (new connections included;
    a backend that exits in between takes its CPU with it: with connection pools, rare)."""

    def __init__(self):
        self.start = cpu_by_pid(database_backends())

    def seconds(self) -> float:
        now = cpu_by_pid(set(database_backends()) | set(self.start))
        return sum(max(0.0, now.get(pid, self.start.get(pid, 0)) - self.start.get(pid, 0)) for pid in now)


def machine_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine since boot (all cores; /proc/stat less idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def cpu_by_pid(pids: Iterable[int]) -> dict[int, float]:
    return {pid: cpu_seconds([pid]) for pid in pids}


def pids_named(name: str) -> list[int]:
    """Processes whose command is `name` (e.g. postgres, redis-server): read only, for CPU accounting."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


class Sampler:
    """Samples, every `interval` s in a thread: PostgreSQL connections to the bench database and the
    summed RSS/PSS of the given process trees. Peaks are kept."""

    def __init__(self, roots: list[int], interval: float = 0.1):
        import psycopg

        self.roots = roots
        self.interval = interval
        self.conn = psycopg.connect(DATABASE_URL, autocommit=True)
        self.peak_connections = 0
        self.peak_rss_kb = 0
        self.peak_pss_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        dbname = urlsplit(DATABASE_URL).path.lstrip("/")
        while not self._stop.is_set():
            (count,) = self.conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [dbname]
            ).fetchone()
            self.peak_connections = max(self.peak_connections, count)
            pids = [p for root in self.roots for p in process_tree(root)]
            self.peak_rss_kb = max(self.peak_rss_kb, sum(status_kb(p, "VmRSS") for p in pids))
            self.peak_pss_kb = max(self.peak_pss_kb, sum(pss_kb(p) for p in pids))
            self._stop.wait(self.interval)

    def stop(self) -> Sampler:
        self._stop.set()
        self._thread.join()
        self.conn.close()
        return self


# --- Statistics and output ------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    data = sorted(values)
    if not data:
        return float("nan")
    if len(data) == 1:
        return data[0]
    position = (len(data) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (position - low)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def arg_int(name: str, default: int) -> int:
    """--name N from argv, else the environment's BENCH_NAME, else the default."""
    flag = f"--{name}"
    if flag in sys.argv:
        return int(sys.argv[sys.argv.index(flag) + 1])
    return int(os.environ.get(f"BENCH_{name.upper().replace('-', '_')}", default))


def arg_float(name: str, default: float) -> float:
    flag = f"--{name}"
    if flag in sys.argv:
        return float(sys.argv[sys.argv.index(flag) + 1])
    return float(os.environ.get(f"BENCH_{name.upper().replace('-', '_')}", default))


def submit_runs(data: dict, count: int) -> tuple[list[str], float, float]:
    """`count` runs through actions.runs.submit.run_submit, back to back; (ids, started, ended) in Unix time."""
    from actions.runs.submit import run_submit

    started = time.time()
    ids = []
    for _ in range(count):
        run = run_submit(user=data["user"], action=data["dispatch_action"], device=data["device"], params={})
        if run.enqueued is False:
            fail("the broker refused a task: is Redis up?")
        ids.append(str(run.pk))
    return ids, started, time.time()


def browser_sessions(count: int) -> list:
    """`count` signed-in sessions, each holding the action page's CSRF cookie as a browser would."""
    sessions = [login() for _ in range(count)]
    for session in sessions:
        session.get(f"{WEB_URL}/actions/{DISPATCH_SLUG}/", timeout=30).raise_for_status()
    return sessions


def submit_form(session, data: dict) -> str:
    """One run through the action page's form POST (as a browser sends it); returns the run's id."""
    action_url = f"{WEB_URL}/actions/{DISPATCH_SLUG}/"
    form = {
        "device": data["device"].uid,
        "idempotency_key": secrets.token_urlsafe(24),
        "csrfmiddlewaretoken": session.cookies["csrftoken"],
    }
    response = session.post(action_url, data=form, headers={"Referer": action_url}, allow_redirects=False, timeout=60)
    location = response.headers.get("Location", "")
    if response.status_code != 302 or "/runs/" not in location:
        fail(f"the form POST answered {response.status_code} (Location {location!r}): {response.text[:300]}")
    return location.rstrip("/").rsplit("/", 1)[-1]


def submit_runs_http(data: dict, count: int, sessions: list) -> tuple[list[str], float, float]:
    """`count` form POSTs through gunicorn, from as many concurrent clients as `sessions`, at once.

    Returns (run ids, when the first POST started, when the last one was answered) in Unix time.
    """
    from concurrent.futures import ThreadPoolExecutor

    started = time.time()
    with ThreadPoolExecutor(len(sessions)) as pool:
        ids = list(pool.map(lambda i: submit_form(sessions[i % len(sessions)], data), range(count)))
    return ids, started, time.time()


def statuses(times: dict[str, dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in times.values():
        out[row["status"]] = out.get(row["status"], 0) + 1
    return out
